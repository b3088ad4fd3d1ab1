"""The locust integration: ``chat-swarm``, the locust users and their results.

Only modules of this package (and ``loadtest/locustfile.py``) may import locust, because
``import locust`` monkey-patches the whole process with gevent.  ``client`` is the chat
client under gevent (imports neither locust nor gevent itself), ``users`` the abstract
locust user that fires request events, ``options`` the ``--chat-*`` flags, ``results``
the results document, ``cli`` the ``chat-swarm`` command.
"""
