"""query.EXPORT_FORMATS: every place that names the export formats takes them from it."""

import typing
from types import SimpleNamespace

from app.api import create_management_app
from app.cli.hits import ExportFormat as CliExportFormat, Format as CliFormat
from app.config import Settings
from app.query import EXPORT_FORMATS, Exporter, ExportFormat


def test_each_format_has_its_writer():
    for name, spec in EXPORT_FORMATS.items():
        assert type(Exporter(name)) is spec.writer and isinstance(Exporter(name), Exporter)
        assert spec.media_type and spec.suffix and spec.label


def test_the_cli_and_the_api_offer_the_registered_formats():
    assert typing.get_args(ExportFormat) == tuple(EXPORT_FORMATS)
    assert [f.value for f in CliExportFormat] == list(EXPORT_FORMATS)
    assert [f.value for f in CliFormat] == ["table", *EXPORT_FORMATS]
    api = create_management_app(store=SimpleNamespace(unavailable=()), pipeline=None, settings=Settings(node="unit"))
    export = api.openapi()["paths"]["/api/v1/hits/export"]["get"]
    [parameter] = [p for p in export["parameters"] if p["name"] == "format"]
    assert parameter["schema"]["enum"] == list(EXPORT_FORMATS) and parameter["schema"]["default"] == "csv"
    content = [media for media in export["responses"]["200"]["content"] if media != "application/json"]  # FastAPI's own
    assert content == [spec.media_type.split(";")[0] for spec in EXPORT_FORMATS.values()]
