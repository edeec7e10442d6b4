"""``tva review BASE HEAD``: what merging a change to the fleet repo would do.

Exit codes follow Terraform and ``tva plan``: 0 the change has no effect (HEAD means the same as
BASE), 2 it has one, 1 HEAD is invalid or the review could not run. With ``--markdown`` an
invalid HEAD still prints a comment (its problems, with file and line), so CI can post it.
"""

from __future__ import annotations

from controller.cli.inputs import choose_now
from controller.cli.output import emit_json, err, esc, out, print_problems
from controller.errors import PermanentError, ValidationFailed

__all__ = ["run"]


def run(
    base: str,
    head: str = "HEAD",
    *,
    repo: str = ".",
    status_dir: str | None = None,
    fleet_ref: bool = False,
    fetch: bool = True,
    remote: str = "origin",
    as_json: bool = False,
    markdown: bool = False,
    now: str | None = None,
) -> int:
    from controller.review import compare, render_markdown, render_text
    from controller.review.inputs import load_revisions, open_repo, read_statuses

    if status_dir is not None and fleet_ref:
        raise PermanentError("give --status DIR or --fleet-ref, not both")
    if as_json and markdown:
        raise PermanentError("give --markdown or --json, not both")
    git_repo = open_repo(repo)
    try:
        revs = load_revisions(git_repo, base, head)
    except ValidationFailed as e:
        _invalid(head, git_repo.resolve(head), e, as_json=as_json, markdown=markdown)
        return 1
    policy = (revs.base or revs.head).fleet.status
    statuses, notes = read_statuses(
        status_dir=status_dir, repo=repo if fleet_ref else None, policy=policy,
        fetch=fetch, remote=remote)
    when, note = choose_now(now, statuses)
    if note:
        notes.append(note)
    review = compare(revs.base, revs.head, statuses, when, base_info=revs.base_info,
                     head_info=revs.head_info, notes=revs.notes + notes)
    names = {k: it.name for k, it in revs.head.items.items()}
    if revs.base is not None:
        for k, it in revs.base.items.items():
            names.setdefault(k, it.name)
    if as_json:
        emit_json(review.model_dump(mode="json"))
    elif markdown:
        out.print(render_markdown(review, names), markup=False, end="")
    else:
        out.print(render_text(review, names), markup=False, end="")
    return review.exit_code


def _invalid(head: str, sha: str, e: ValidationFailed, *, as_json: bool, markdown: bool) -> None:
    from controller.review.markdown import invalid_head_markdown

    print_problems(e.problems)
    n = len(e.problems)
    err.print(f"[red]HEAD {esc(head)} ({sha[:12]}): invalid[/red] "
              f"({n} problem{'s' if n != 1 else ''})", markup=True)
    if as_json:
        emit_json({"format": "tva.review/v1", "valid": False,
                   "head": {"requested": head, "revision": sha},
                   "problems": [p.to_json() for p in e.problems]})
    elif markdown:
        out.print(invalid_head_markdown(head, sha, [str(p) for p in e.problems]), markup=False,
                  end="")
