"""DataLoaders, built fresh for each operation so a cache never outlives its session or its viewer.

Each loader asks its service for a whole level of the query at once: one statement per level,
however many rows the level above has.
"""

import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from api.db.models import FetchJob, FetchResult, JobStatus, Outcome, User
from api.services import fetch_jobs, users
from api.services.callers import Caller
from api.services.pagination import Page, PageRequest

# The jobs of one owner: (owner id, page asked for, status filter).
JobsKey = tuple[uuid.UUID, PageRequest, JobStatus | None]
# The results of one job: (job id, outcome filter).
ResultsKey = tuple[uuid.UUID, Outcome | None]


class Loaders:
    def __init__(self, session: AsyncSession, viewer: Callable[[], Caller | None]) -> None:
        async def load_users(keys: Sequence[uuid.UUID]) -> list[User | None]:
            found = await users.get_users(session, actor=viewer(), user_ids=keys)
            return [found.get(key) for key in keys]

        async def load_jobs(keys: Sequence[uuid.UUID]) -> list[FetchJob | None]:
            found = await fetch_jobs.get_jobs(session, actor=viewer(), job_ids=keys)
            return [found.get(key) for key in keys]

        async def load_jobs_of_owners(keys: Sequence[JobsKey]) -> list[Page[FetchJob]]:
            """Owners asked with the same page and filter (all of them, in a list) share one query."""
            owners: defaultdict[tuple[PageRequest, JobStatus | None], list[uuid.UUID]] = defaultdict(list)
            for owner, page, status in keys:
                owners[page, status].append(owner)
            pages: dict[JobsKey, Page[FetchJob]] = {}
            for (page, status), ids in owners.items():
                found = await fetch_jobs.jobs_of_owners(
                    session, actor=viewer(), owner_ids=ids, page=page, status=status
                )
                pages.update(((owner, page, status), found[owner]) for owner in ids)
            return [pages[key] for key in keys]

        async def load_results(keys: Sequence[ResultsKey]) -> list[list[FetchResult]]:
            jobs: defaultdict[Outcome | None, list[uuid.UUID]] = defaultdict(list)
            for job, outcome in keys:
                jobs[outcome].append(job)
            results: dict[ResultsKey, list[FetchResult]] = {}
            for outcome, ids in jobs.items():
                found = await fetch_jobs.results_of_jobs(
                    session, actor=viewer(), job_ids=ids, outcome=outcome
                )
                results.update(((job, outcome), found[job]) for job in ids)
            return [results[key] for key in keys]

        self.users = DataLoader(load_users)
        self.jobs = DataLoader(load_jobs)
        self.jobs_of_owners = DataLoader(load_jobs_of_owners)
        self.results = DataLoader(load_results)
