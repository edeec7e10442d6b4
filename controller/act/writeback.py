"""Write-back: the acquirer's commit of an item file to the fleet repo, as Flux's image
automation does it: a commit on the followed branch, on a branch of the operator's choosing, or
on a branch of its own (``tva/acquire/<info-hash>``) with a pull request on the forge
(Forgejo, Gitea, GitHub: ``controller.clients.forge``), as the node's ``node.toml`` says.

The commit is made in a checkout of the acquirer's own (``<state>/acquirer``), reset to the
remote branch before each proposal, as the bot identity of the node's ``node.toml``
(``[acquirer]``), signed with its SSH key when one is set (the nodes' allowed-signers may then
list it). A push that loses a race with another writer is tried once more on the new head.
Files already on the branch with the same content are not committed again (a proposal that is
pending is not made twice). The checkout with the new files is validated as the nodes would
validate the revision (``controller.desired``) before anything is committed: whatever an
indexer sent, the acquirer never pushes a revision the fleet would refuse.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from controller.clients.forge import ForgeApi
from controller.clients.git import GitRepo, RetryPolicy, clone
from controller.desired.loader import load_fleet
from controller.errors import PermanentError, TvaError, ValidationFailed
from controller.nodeconfig import current
from schemas.node import PullRequestConfig
from schemas.repopath import repo_path_problem

__all__ = ["GitProposer", "Proposal", "ProposalInvalid"]


@dataclass(frozen=True)
class Proposal:
    commit: str | None
    """The new commit; None when the branch already held the files."""
    branch: str
    pull_request: str | None = None
    """The pull request's web address, when one was opened."""


@dataclass
class GitProposer:
    remote: str
    """The fleet repo's URL or path (the daemon's ``--repo``)."""
    branch: str
    """The branch the daemon follows."""
    workdir: str
    policy: RetryPolicy = field(default_factory=lambda: RetryPolicy(attempts=3))

    forge: Callable[[PullRequestConfig], ForgeApi] = ForgeApi

    def target(self, topic: str) -> str:
        """The branch a proposal goes to: its own with pull requests, else the configured one
        or the followed one."""
        cfg = current().acquirer
        if cfg.pull_request is not None:
            return f"tva/acquire/{topic}"
        return cfg.branch or self.branch

    def pending(self, path: str, topic: str) -> bool:
        """Is ``path`` already proposed: on the followed branch, or on the proposal's branch
        (not yet arrived everywhere, or not yet merged)?"""
        repo = self._sync(self.target(topic))
        try:
            return any(repo.file_size(f"refs/remotes/origin/{b}", path) is not None
                       for b in {self.target(topic), self.branch})
        finally:
            repo.close()

    def propose(self, files: Mapping[str, bytes], message: str, topic: str) -> Proposal:
        for rel in files:
            why = repo_path_problem(rel)
            if why is not None:
                raise PermanentError(f"refusing to write {rel!r}: {why}")
        target = self.target(topic)
        last: TvaError | None = None
        for _ in range(2):
            repo = self._sync(target)
            try:
                done = self._commit_and_push(repo, files, message, target)
                return self._pull_request(done, message)
            except _PushFailed as e:  # a lost race (non-fast-forward): once more, on the new head
                last = e.error
            finally:
                repo.close()
        assert last is not None
        raise last

    def _pull_request(self, done: Proposal, message: str) -> Proposal:
        cfg = current().acquirer.pull_request
        if cfg is None or done.commit is None:
            return done
        title, _, body = message.partition("\n")
        api = self.forge(cfg)
        try:
            url = api.open_pull_request(head=done.branch, base=self.branch, title=title,
                                        body=body.strip())
        finally:
            api.close()
        return Proposal(done.commit, done.branch, url)

    def _sync(self, target: str) -> GitRepo:
        if not os.path.isdir(os.path.join(self.workdir, ".git")):
            os.makedirs(os.path.dirname(self.workdir) or ".", exist_ok=True)
            clone(self.remote, self.workdir, policy=self.policy).close()
        repo = GitRepo.open(self.workdir)
        what = f"fetching {self.remote} for the acquirer"
        repo.run("fetch", "--quiet", "--prune", "origin", what=what)
        start = (f"refs/remotes/origin/{target}"
                 if repo.commit_or_none(f"refs/remotes/origin/{target}") is not None
                 else f"refs/remotes/origin/{self.branch}")
        repo.run("checkout", "--quiet", "--force", "-B", "tva-acquirer", start, what=what)
        repo.run("clean", "--quiet", "-fdx", what=what)
        return repo

    def _commit_and_push(self, repo: GitRepo, files: Mapping[str, bytes], message: str,
                         target: str) -> Proposal:
        changed = False
        for rel, data in files.items():
            path = os.path.join(repo.path, rel)
            try:
                with open(path, "rb") as f:
                    if f.read() == data:
                        continue
            except OSError:
                pass
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
            changed = True
        if not changed:
            return Proposal(None, target)
        try:  # the commit must be a revision the nodes accept, or it is not made
            load_fleet(repo.path)
        except ValidationFailed as e:
            raise ProposalInvalid(
                "the proposal would not be a valid revision of the fleet repo, so it is not "
                f"committed: {'; '.join(str(p) for p in e.problems[:3])}") from None
        cfg = current().acquirer
        name, _, email = cfg.identity.rpartition(" <")
        what = "committing the acquirer's proposal"
        repo.run("add", "--", *files, what=what)
        args = ["-c", f"user.name={name}", "-c", f"user.email={email.rstrip('>')}"]
        if cfg.signing_key is not None:
            args += ["-c", "gpg.format=ssh", "-c", f"user.signingkey={cfg.signing_key}",
                     "commit", "--quiet", "--no-verify", "-S"]
        else:
            args += ["commit", "--quiet", "--no-verify", "--no-gpg-sign"]
        repo.run(*args, "-m", message, what=what)
        sha = repo.resolve("HEAD")
        try:
            repo.run("push", "--quiet", "origin", f"HEAD:refs/heads/{target}",
                     what=f"pushing the acquirer's proposal to {target}")
        except PermanentError as e:
            raise _PushFailed(e) from e
        return Proposal(sha, target)


class ProposalInvalid(PermanentError):
    """The files would make the branch's tip an invalid revision: nothing is committed."""


class _PushFailed(Exception):
    def __init__(self, error: TvaError) -> None:
        super().__init__(str(error))
        self.error = error
