"""A CSV renderer that lets ``?format=csv`` and ``Accept: text/csv`` through DRF's content
negotiation for views that write their CSV themselves; anything else it is asked to render (an
error body) goes out as JSON, so errors keep their one shape."""

from rest_framework import renderers


class CsvPassthroughRenderer(renderers.BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if renderer_context and renderer_context.get("response") is not None:
            renderer_context["response"]["Content-Type"] = "application/json"
        return renderers.JSONRenderer().render(data)
