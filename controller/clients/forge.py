"""The client of a forge's API (Forgejo, Gitea, GitHub) over httpx: opening pull requests.

The acquirer proposes an acquisition as a pull request when the node's ``node.toml`` says so
(``[acquirer.pull_request]``). The API root, the repository and the token all come from the
node's operator, never from the fleet repo; the request still passes the egress policy (no
link-local or metadata address). The three forges share the call: ``POST
/repos/{owner}/{repo}/pulls`` with ``title``, ``head``, ``base`` and ``body``. A pull request
that already exists for the branch (HTTP 409 on Forgejo and Gitea, 422 on GitHub) is not an
error: the proposal is pending.
"""

from __future__ import annotations

import httpx

from controller.egress import check
from controller.errors import AuthError, PermanentError, TemporaryError, UnreachableError
from controller.secrets import resolve
from schemas.node import PullRequestConfig

__all__ = ["ForgeApi"]

TIMEOUT = httpx.Timeout(20.0, connect=5.0)


class ForgeApi:
    def __init__(self, config: PullRequestConfig, client: httpx.Client | None = None) -> None:
        self.config = config
        self.http = client or httpx.Client(timeout=TIMEOUT, follow_redirects=False)

    def open_pull_request(self, *, head: str, base: str, title: str, body: str) -> str | None:
        """Open a pull request of ``head`` into ``base``; its web URL, or None when one is
        already open for ``head``."""
        url = f"{self.config.api.rstrip('/')}/repos/{self.config.repo}/pulls"
        check(url)
        token = resolve(self.config.token)
        try:
            r = self.http.post(url, json={"title": title, "head": head, "base": base, "body": body},
                               headers={"Authorization": f"token {token}",
                                        "Accept": "application/json"})
        except httpx.HTTPError as e:
            raise UnreachableError(f"the forge at {self.config.api} is unreachable "
                                   f"({type(e).__name__})") from None
        if r.status_code in (409, 422):
            return None
        if r.status_code in (401, 403):
            raise AuthError(f"the forge refused the token (HTTP {r.status_code}); check "
                            "[acquirer.pull_request] token in node.toml")
        if r.status_code >= 500 or r.status_code == 429:
            raise TemporaryError(f"the forge answered HTTP {r.status_code}")
        if r.status_code not in (200, 201):
            raise PermanentError(f"the forge answered HTTP {r.status_code} to a pull request")
        try:
            data = r.json()
        except ValueError:
            return ""
        link = data.get("html_url") if isinstance(data, dict) else None
        return str(link) if isinstance(link, str) else ""

    def close(self) -> None:
        self.http.close()
