"""The example's emulator module: deletes signals from the Signal API module's store (its peer)."""

from __future__ import annotations

from .base import ApiRequest, Route, platform_error
from .signals import SignalApi


class SignalDeleteApi:
    needs = (SignalApi,)  # the server builds that module first and hands it over

    def __init__(self, config, clock=None, peers=None):
        self.config = config
        self.store = peers[SignalApi].store
        self.deleted: list[str] = []
        self.routes = [Route.of("DELETE", r"/api/[^/]+/transactions/signals(?:\.json)?", self._delete)]

    def describe(self) -> str:
        return "signal deletes"

    def snapshot(self) -> dict:
        return {"deleted": list(self.deleted)}

    def reset(self) -> None:
        self.deleted.clear()

    def _delete(self, request: ApiRequest) -> tuple[int, dict]:
        if request.query.get("oauth_token") != self.config.token:
            raise platform_error(401, "NotAuthorized", "Invalid or missing oauth token")
        wanted = request.query.get("transaction_id", "")
        with self.store.lock:
            for key, stored in list(self.store.signals.items()):
                if stored["transaction_id"] == wanted:
                    del self.store.signals[key]
                    self.deleted.append(wanted)
                    return 200, {"signal": {"transaction_id": wanted}}
        raise platform_error(404, "RecordNotFound", "no such signal")
