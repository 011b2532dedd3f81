from rest_framework.pagination import PageNumberPagination


class Paging(PageNumberPagination):
    """`?page=N` of `page_size` (at most 200) items, with `count`, `next` and `previous`."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
