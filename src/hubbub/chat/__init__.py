"""``hubbub chat``: an interactive terminal chat on top of :mod:`hubbub.client`.

    hubbub chat ws://127.0.0.1:8000/connection/websocket --channel chat:lobby --name alice

Modules: ``payload`` (a chat message on the wire), ``commands`` (what a typed line
asks for), ``render`` (the lines shown: pure functions), ``app`` (the prompt loop and
the client, ``run_chat``). ``python -m hubbub.chat`` runs it without the ``hubbub``
command.
"""
