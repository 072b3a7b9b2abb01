"""Lists of the staff console that stay as fast at millions of rows as at a hundred.

Django's admin counts the list twice on every load: the whole table (`show_full_result_count`)
and the filtered rows (the paginator). Both are full scans, on PostgreSQL as on SQLite, and they
grow with the table while the page shows the same 100 rows. Here neither runs:

- `show_full_result_count` is off, so the whole table is never counted;
- `PeekingPaginator` counts only as far as the pages the list offers links to: the rows up to ten
  pages past the one shown, in one `SELECT COUNT(*) FROM (… LIMIT n)`. Up to that many the count
  is exact; past it the page says "more than 1,000 callbacks" instead of a number, and the last
  page link leads on to the next ten pages. The work of a load is bounded by how deep one pages,
  which the OFFSET of the page itself costs anyway.

The admin templates of this app (`templates/admin/channels_app/pagination.html`,
`search_form.html`, `actions.html`) read `cl.paginator.count_text`, so no page shows a capped
number as if it were the total.
"""

from django.contrib import admin
from django.contrib.admin.views.main import PAGE_VAR
from django.core.paginator import Paginator
from django.utils.functional import cached_property

# How many pages past the one shown the count looks for.
PAGES_AHEAD = 10


class PeekingPaginator(Paginator):
    """A paginator that counts at most `peek_rows` rows (+1, to know that there are more).

    `count` is exact while `more` is False; with `more` it is `peek_rows`, a lower bound, and
    `count_text` says "more than …".
    """

    def __init__(self, object_list, per_page, *, peek_rows: int, **kwargs) -> None:
        super().__init__(object_list, per_page, **kwargs)
        self.peek_rows = peek_rows
        self.more = False

    @cached_property
    def count(self) -> int:
        # order_by(): the count needs no ORDER BY; the slice makes it COUNT(*) over a LIMITed subquery.
        counted = self.object_list.order_by()[: self.peek_rows + 1].count()
        self.more = counted > self.peek_rows
        return min(counted, self.peek_rows)

    @property
    def count_text(self) -> str:
        return f"more than {self.count:,}" if self.count and self.more else f"{self.count:,}"


class BoundedListAdmin(admin.ModelAdmin):
    """A ModelAdmin whose list never counts or scans the whole table (see the module docstring).

    Its filters must not either: plain fields without choices in `list_filter` run a
    `SELECT DISTINCT` over the table for their links, so those get a filter with a fixed vocabulary
    (`channels_app.admin.filters`). Facet counts are off for the same reason.
    """

    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        try:
            page = max(1, int(request.GET.get(PAGE_VAR, 1)))
        except ValueError:
            page = 1
        return PeekingPaginator(
            queryset,
            per_page,
            orphans=orphans,
            allow_empty_first_page=allow_empty_first_page,
            peek_rows=(page - 1 + PAGES_AHEAD) * per_page,
        )
