"""The GraphQL transport: how a request or a socket reaches a resolver, in reading order.

- ``router``: ``GraphQLApp``, mounted at ``/graphql`` by ``api.app``. Over HTTP it answers as GraphQL
  over HTTP asks; a WebSocket it hands to ``sockets``.
- ``context``: ``get_context``, a FastAPI dependency built from the REST routes' dependencies, gives
  each HTTP operation a ``Context`` with its own session and loaders; a socket gets a
  ``SocketContext``, signed in at ``connection_init`` (``GraphQLApp.on_ws_connect``), whose
  operations and events each open a scope of their own.
- ``sockets``: the two WebSocket protocols (shape checks, pings, the caller re-checked, closing codes).
- ``relay``: one run of a subscription for every ``graphql-transport-ws`` socket asking the same
  thing as the same viewer; each socket follows it from an outbox of its own.
- ``schema``: the Schema of ``schema.root``'s root types with the extensions, each made anew per
  operation: ``parsing`` (each document parsed and validated once), ``errors`` (domain codes, bugs
  masked, the session rolled back on an error), ``metrics``; and ``execution``, the executor, which
  calls the resolvers of ``resolvers/`` and the nested fields of ``schema/``.
"""
