"""Typed path and query parameters that several routes share.

Every integer is bounded by what its column holds (signed 64 bits for ids), so that an id
beyond it is a 422 naming the parameter instead of a database error, and a
page number is bounded so that its OFFSET (``(page - 1) * per_page``) fits too.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from jobyard.storable import INT64_MAX

INT32_MAX = 2**31 - 1  # attempts are counted in a 32-bit column
MAX_PER_PAGE = 500

JobId = Annotated[int, Path(ge=1, le=INT64_MAX, description="job id")]
RunId = Annotated[int, Path(ge=1, le=INT64_MAX, description="workflow run id")]
TokenId = Annotated[int, Path(ge=1, le=INT64_MAX, description="API token id")]
Page = Annotated[int, Query(ge=1, le=INT64_MAX // MAX_PER_PAGE)]
PerPage = Annotated[int, Query(ge=1, le=MAX_PER_PAGE)]
JobFilter = Annotated[int | None, Query(ge=1, le=INT64_MAX, description="a job id")]
RunFilter = Annotated[int | None, Query(ge=1, le=INT64_MAX, description="a workflow run id")]
Attempt = Annotated[int | None, Query(ge=1, le=INT32_MAX, description="an attempt number")]
EventAfter = Annotated[
    int | None, Query(ge=0, le=INT64_MAX, description="resume after this event id")
]
