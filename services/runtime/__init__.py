"""What every Agora service shares: server, interceptors, errors, config, database, clients.

A service builds its servicer in ``bootstrap.py`` and hands it to :func:`runtime.server.serve`::

    from runtime.server import Service, serve

    service = Service(name="catalog", ...)
    asyncio.run(serve(service, settings))
"""
