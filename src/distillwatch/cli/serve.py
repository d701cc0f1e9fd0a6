"""``distillwatch serve``: the real-time gateway in front of an OpenAI / Anthropic API."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from distillwatch.cli.common import KEY_FILE_OPTION
from distillwatch.exceptions import DistillwatchConfigError


def serve_command(
    upstream: str = typer.Option(
        None, "--upstream", "-u", envvar="DISTILLWATCH_UPSTREAM",
        help="Base URL of the API the gateway fronts; request paths (/v1/chat/completions, "
             "/v1/messages, ...) are appended to it, e.g. http://10.0.0.2:8000 or "
             "https://api.openai.com (or $DISTILLWATCH_UPSTREAM). Required."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0 for "
                             "every interface)."),
    port: int = typer.Option(8080, "--port", "-p", min=1, max=65535, help="Port to listen on."),
    scan: Path = typer.Option(
        None, "--scan", help="Output folder of `distillwatch scan --out DIR`: its "
        "accounts.jsonl decisions are enforced (re-read when the files change) and its "
        "campaigns' indicators feed the online detector."),
    policy: Path = typer.Option(
        None, "--policy", help="Gateway policy YAML (default: the built-in "
        "src/distillwatch/conf/gateway.yaml, which documents every key): Retry-After, "
        "verification URL, fail-open, rate limits, withhold_reasoning, log rotation."),
    redis_url: str = typer.Option(
        None, "--redis-url", envvar="DISTILLWATCH_REDIS_URL",
        help="Share decisions and counters with other replicas through this Redis, e.g. "
             "redis://127.0.0.1:6379/0 (or $DISTILLWATCH_REDIS_URL). Without it state is "
             "in-process (one replica)."),
    redis_prefix: str = typer.Option(
        "distillwatch", "--redis-prefix", envvar="DISTILLWATCH_REDIS_PREFIX",
        help="Prefix of every Redis key and channel; replicas of one deployment share it "
             "(or $DISTILLWATCH_REDIS_PREFIX)."),
    admin_token_file: Path = typer.Option(
        None, "--admin-token-file", envvar="DISTILLWATCH_ADMIN_TOKEN_FILE",
        help="File holding the bearer token of the admin API (/admin/decisions, "
             "/admin/indicators) and /metrics (or $DISTILLWATCH_ADMIN_TOKEN_FILE). Without "
             "it those routes are not served."),
    trusted_proxy: list[str] = typer.Option(
        [], "--trusted-proxy", help="CIDR of a proxy in front of the gateway whose "
        "X-Forwarded-For is believed (repeatable). X-Forwarded-For is walked right to left "
        "through trusted hops only; from any other peer it is ignored."),
    log_dir: Path = typer.Option(
        None, "--log-dir", help="Write every exchange here, in the Exchange schema (rotating "
        "exchanges-*.jsonl.gz, readable by `distillwatch ingest` even after a crash). "
        "Without it nothing is logged."),
    account_header: str = typer.Option(
        "X-Account-Id", "--account-header", help="Request header carrying the account id, "
        "set by the provider's auth layer in front of the gateway (it must overwrite any "
        "client-sent value)."),
    key_map: Path = typer.Option(
        None, "--key-map", help="Key id → account file for requests without the account "
        "header: a .json object {key id: account}, a .csv with api_key_id,account_id columns, "
        "or JSONL lines {\"api_key_id\", \"account_id\"}; key ids come from --hash-keys."),
    key_file: Path = KEY_FILE_OPTION,
    accounts: list[Path] = typer.Option(
        [], "--accounts", "-a", help="Account file(s) for the online detector (payment "
        "fingerprints, verified, organisation; the Account schema; repeatable)."),
    stix: list[Path] = typer.Option(
        [], "--stix", help="Partner STIX 2.1 bundle(s) whose campaign indicators the online "
        "detector matches too (repeatable)."),
    detector_settings: Path = typer.Option(
        None, "--detector-settings", help="Online detector settings YAML (default: the "
        "built-in src/distillwatch/conf/detector.yaml)."),
    no_detector: bool = typer.Option(
        False, "--no-detector", help="Enforce scan and admin decisions and rate limits only; "
        "do not run the online matcher."),
    server: str = typer.Option(
        "builtin", "--server", help="HTTP server: builtin (serve's own HTTP/1.1 front end: "
        "API calls relayed on asyncio protocols, ~0.1 ms added at 1,000 req/s) or uvicorn "
        "(the generic ASGI server; the same behaviour, ~1 ms more CPU a request).",
        case_sensitive=False),
    hash_keys: bool = typer.Option(
        False, "--hash-keys", help="Read API keys from stdin, one a line, print each one's "
        "key id (keyed with --key-file) for a --key-map, and exit."),
) -> None:
    """Run the gateway: enforce decisions on every LLM API call and log every exchange.

    Proxies POST /v1/chat/completions, /v1/responses, /v1/completions (OpenAI) and
    /v1/messages (Anthropic) to --upstream, streaming server-sent events chunk by chunk with
    status and headers kept; other /v1/... paths pass through unchanged. Each request's
    account (--account-header, else --key-map), API key id (a keyed hash: the key itself is
    never logged) and client IP (--trusted-proxy) are checked against the decisions in
    force: the scan's (--scan), the admin API's (which override them) and the online
    detector's, plus the policy's rate limits. allow and monitor pass; throttle answers 429
    with Retry-After; verify and block answer 403, in the API's own error shape. Upstream
    unreachable: 502; with --redis-url, fail-closed and Redis gone: 503.

    Admin API (Authorization: Bearer <token from --admin-token-file>): GET /admin/decisions,
    GET / PUT / DELETE /admin/decisions/{account:ID | key:KID | ip:ADDR} (PUT body:
    {"kind": "block", "reason": "...", "ttl": 86400}), GET /admin/indicators, GET /metrics
    (Prometheus). GET /healthz needs no token.

    Environment: DISTILLWATCH_UPSTREAM, DISTILLWATCH_REDIS_URL, DISTILLWATCH_REDIS_PREFIX,
    DISTILLWATCH_ADMIN_TOKEN_FILE, DISTILLWATCH_FINGERPRINT_KEY (for --key-file).

    Example: distillwatch serve --upstream http://127.0.0.1:8000 --scan out/ --log-dir logs/
    --key-file fp.key --admin-token-file admin.token --trusted-proxy 10.0.0.0/8

    Example (two replicas sharing state): distillwatch serve --upstream http://10.0.0.2:8000
    --port 8081 --redis-url redis://10.0.0.3:6379/0 --scan out/
    """
    from rich.console import Console

    from distillwatch.cli.ingest import fingerprint_key
    from distillwatch.gateway.identity import key_id

    console = Console(stderr=True)
    key, unkeyed = fingerprint_key(key_file)
    if hash_keys:
        for line in sys.stdin:
            token = line.strip()
            if token:
                print(key_id(key, token))
        return
    server = server.lower()
    if server not in ("builtin", "uvicorn"):
        raise DistillwatchConfigError(f"--server {server!r}: give builtin or uvicorn")
    if not upstream:
        raise DistillwatchConfigError("Give --upstream URL (the API the gateway fronts), "
                                      "or set $DISTILLWATCH_UPSTREAM")
    from prometheus_client import disable_created_metrics

    disable_created_metrics()  # no *_created series beside every counter
    config, app = _build(upstream, scan, policy, redis_url, redis_prefix, admin_token_file,
                         trusted_proxy, log_dir, account_header, key_map, key, accounts,
                         stix, detector_settings, no_detector)
    gateway = app.state.gateway
    if unkeyed:
        console.print("[yellow]warning:[/] no fingerprint key (--key-file); key ids and "
                      "fingerprints are unkeyed and will not match a keyed scan")
    console.print(f"distillwatch serve: http://{host}:{port} → {gateway.upstream}")
    if gateway.scan is not None:
        console.print(f"  scan {scan}: {len(gateway.scan.decisions):,} decisions "
                      f"{gateway.scan.counts} (re-read on change every "
                      f"{config.policy.scan_reload_s:g} s)")
    console.print(f"  state: {'Redis ' + redis_url if redis_url else 'in-process'}"
                  f"{'' if not redis_url else ' (fail-open)' if config.policy.fail_open else ' (fail-closed)'}")  # noqa: E501
    console.print("  admin API and /metrics: " + (
        "enabled (bearer token)" if config.admin_token else
        "[yellow]disabled[/] (no --admin-token-file)"))
    console.print(f"  exchange log: {log_dir if log_dir else 'off (no --log-dir)'}")
    if gateway.detector is not None:
        totals = gateway.detector.summary().get("totals", {})
        console.print(f"  online detector: on ({totals.get('campaigns', 0)} campaigns, "
                      f"{totals.get('templates', 0)} scaffold fingerprints)")
    else:
        console.print("  online detector: off (" + (
            "--no-detector" if no_detector else
            "no indicators: give --scan, --stix or --accounts") + ")")
    console.print(f"  server: {server}")
    _run(app, host, port, server)


def _build(upstream, scan, policy, redis_url, redis_prefix, admin_token_file, trusted_proxy,
           log_dir, account_header, key_map, key, accounts, stix, detector_settings,
           no_detector):
    from distillwatch.gateway.app import GatewayConfig, build_app, default_detector
    from distillwatch.gateway.decisions import load_policy
    from distillwatch.gateway.identity import load_key_map

    token = None
    if admin_token_file is not None:
        if not admin_token_file.is_file():
            raise DistillwatchConfigError(f"Admin token file {admin_token_file} does not exist")
        token = admin_token_file.read_text(encoding="utf-8").strip()
        if len(token) < 16:
            raise DistillwatchConfigError(
                f"The admin token in {admin_token_file} is shorter than 16 characters")
    for path in [*accounts, *stix]:
        if not path.is_file():
            raise DistillwatchConfigError(f"No such file: {path}")
    config = GatewayConfig(
        upstream=upstream, policy=load_policy(policy), scan_dir=scan,
        accounts=tuple(accounts), stix=tuple(stix), detector_settings=detector_settings,
        redis_url=redis_url, redis_prefix=redis_prefix, admin_token=token,
        trusted_proxies=tuple(trusted_proxy), log_dir=log_dir,
        account_header=account_header, key_map=load_key_map(key_map) if key_map else {},
        key=key, detector=None if no_detector else default_detector)
    return config, build_app(config)


def fastest_loop_and_http() -> tuple[str, str]:
    """uvicorn's ``loop`` and ``http`` options: uvloop and httptools where installed."""
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    try:
        import httptools  # noqa: F401

        http = "httptools"
    except ImportError:
        http = "h11"
    return loop, http


def _run(app, host: str, port: int, server: str = "builtin") -> None:
    import logging

    verbose = logging.getLogger().getEffectiveLevel() <= logging.INFO
    # The exchange log's writer (and the detector's fingerprinting) run in threads: with the
    # default 5 ms GIL switch interval a request could wait that long behind them.
    sys.setswitchinterval(0.001)
    if server == "builtin":
        import asyncio

        from distillwatch.gateway.relay import FrontServer

        loop, _ = fastest_loop_and_http()
        front = FrontServer(app)
        main = front.serve(host, port, handle_signals=True)
        try:
            if loop == "uvloop":
                import uvloop

                uvloop.run(main)
            else:
                asyncio.run(main)
        except OSError as error:
            raise DistillwatchConfigError(
                f"Cannot listen on {host}:{port}: {error.strerror or error}; give another "
                "--port or --host") from None
        return
    import uvicorn

    loop, http = fastest_loop_and_http()
    # proxy_headers=False: the client IP is resolved by --trusted-proxy, never by uvicorn.
    # No server / date headers of its own: the upstream's pass through.
    uvicorn.run(app, host=host, port=port, loop=loop, http=http, lifespan="on",
                access_log=False, proxy_headers=False, server_header=False, date_header=False,
                log_level="info" if verbose else "warning", timeout_keep_alive=75,
                backlog=4096)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
