"""The load generator behind ``hubbub bench``.

Layout, one noun per module:

* ``plan``      what a run asks for and how its connections spread over processes
                and source addresses (pure)
* ``payload``   benchmark payloads carrying their send time, and finding it again (pure)
* ``wire``      the client side of each protocol: Centrifuge v2 with hubbub's codecs,
                the plain broadcast protocol of the peers, Socket.IO (pure)
* ``stats``     HDR histograms and their percentile summary (pure)
* ``stepping``  when to raise the rate and when to stop (pure)
* ``results``   the JSON document a run writes (pure)
* ``system``    the server's RSS and CPU from ``/proc``; machine and versions
* ``worker``    one load process: picows connections on uvloop
* ``runner``    the parent: starts workers, drives the phases, shows progress
* ``report``    the summary table and the chart
* ``cli``       the ``hubbub bench`` Typer app
"""
