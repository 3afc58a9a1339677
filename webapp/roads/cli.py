"""``flask roads ...``: import a county's road layer, and say what routing can use."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from webapp.db import get_session
from webapp.progress import TerminalProgress, commit_or_exit
from webapp.roads import queries
from webapp.roads.importer import RoadImportRejected, import_roads

roads_cli = AppGroup("roads", help="道路图层（沿道路计算走访路线）(road layers for routing).")


@roads_cli.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--county", "county", required=True, help="县级区划代码（6 位），如 410726")
@click.option("--replace", is_flag=True, help="替换该县已有的道路（默认追加）")
@click.option("--crs", help="覆盖文件自带的坐标系：EPSG:4326、EPSG:4490、EPSG:4513-4554 或 gcj02")
@click.option("--name-field", help="道路名称字段名（默认自动识别 name、名称、道路名称……）")
@click.option("--kind-field", help="道路类型字段名（默认自动识别 kind、等级、highway……）")
def import_command(file, county, replace, crs, name_field, kind_field):
    """Import road lines (GeoJSON, Shapefile .shp/.zip, GeoPackage) for a county."""
    session = get_session()
    progress = TerminalProgress()
    report = commit_or_exit(
        session,
        progress,
        lambda: import_roads(
            session,
            file,
            county.strip(),
            replace=replace,
            crs=crs,
            name_field=name_field,
            kind_field=kind_field,
            progress=progress,
        ),
        RoadImportRejected,
    )
    click.echo("\n".join(report.lines()))


@roads_cli.command("status")
@click.option("--county", "county", required=True, help="县级区划代码（6 位）")
def status_command(county):
    """Say whether routes in a county follow roads, and why not."""
    net = queries.network(get_session(), county.strip())
    click.echo(f"{net.label}。道路 {net.edges} 段；pgRouting {net.pgrouting or '未安装'}")


def init_app(app: Flask) -> None:
    app.cli.add_command(roads_cli)
