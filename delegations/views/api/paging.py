from __future__ import annotations

from functools import cache

from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination


class Paging(PageNumberPagination):
    """`?page=N` of `page_size` (at most 200) items, with `count`, `next` and `previous`."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


@cache
def paginated(item: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The schema of a page of `item`s, as `Paging` answers it."""
    name = item.__name__.removesuffix("Serializer")
    return type(
        f"Paginated{name}ListSerializer",
        (serializers.Serializer,),
        {
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item(many=True),
            "__doc__": f"A page of {name} items.",
        },
    )
