"""LiteLLM ``custom_auth`` for the adapter tests: API keys of test accounts, no database.

A provider's LiteLLM resolves keys to users through its database; without one, this stands in
for it: ``sk-dwtest-<name>`` authenticates as user ``acct-<name>`` (LiteLLM hashes the key into
``user_api_key_dict.token`` as it does for its own keys). Any other key is refused with 401.

Fault injection: the key of ``acct-fault`` makes the adapter's decision step raise inside the
real proxy, to show a bug in the adapter lets the request through (fail-open), never a 500.
"""

from fastapi import HTTPException
from litellm.proxy._types import UserAPIKeyAuth

from distillwatch.gateway import litellm as adapter

ACCOUNTS = ("ok", "block", "verify", "watch", "throttle", "newhead", "ordinary", "ip", "fault")
KEYS = {f"sk-dwtest-{name}": f"acct-{name}" for name in ACCOUNTS}


async def user_api_key_auth(request, api_key: str) -> UserAPIKeyAuth:
    account = KEYS.get(api_key)
    if account is None:
        raise HTTPException(status_code=401, detail={"error": "unknown test key"})
    return UserAPIKeyAuth(api_key=api_key, user_id=account)


_decide = adapter.LiteLLMEnforcer._decide


def _faulty_decide(self, account, key_id, ip, now):
    if account == "acct-fault":
        raise RuntimeError("injected adapter fault")
    return _decide(self, account, key_id, ip, now)


adapter.LiteLLMEnforcer._decide = _faulty_decide
