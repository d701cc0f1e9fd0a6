"""The gateway (`distillwatch serve`): enforces scan decisions and campaign indicators online.

Library modules (importing this package imports none of them, nor Starlette / httpx / Redis):

- ``decisions``: :class:`~distillwatch.gateway.decisions.Decision`, precedence, a scan's
  decisions, the gateway policy;
- ``state``: ``LocalState`` / ``RedisState`` (decisions by subject, sliding-window counters);
- ``network``: the client IP through trusted proxies; ``identity``: account and key id;
- ``errors``: refusals and the reasoning countermeasure in each API's wire shape;
- ``sink``: the crash-safe Exchange log; ``metrics``: Prometheus metrics;
- ``detector`` / ``indicators``: the online matcher.

The service is ``app.py`` (:func:`~distillwatch.gateway.app.build_app`); the library never
imports it. See ``docs/gateway-design.md``.
"""
