"""``hubbub evaluate``: what to deploy, decided from measurements.

* ``codecs``    encode/decode cost and size of every registered codec on chat payloads
* ``ahp``       the Analytic Hierarchy Process: weights, consistency, local priorities (pure)
* ``decision``  the decision file, the measured values of each alternative, the scores
* ``cli``       the ``hubbub evaluate`` Typer app
"""
