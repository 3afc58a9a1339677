"""``flask grid ...``: import boundary files."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from webapp.db import get_session
from webapp.grid.importer import ImportRejected, import_areas
from webapp.grid.models import AreaLevel
from webapp.progress import TerminalProgress, commit_or_exit

grid_cli = AppGroup("grid", help="区划与网格边界 (areas and boundaries).")


@grid_cli.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--level",
    required=True,
    type=click.Choice([lv.value for lv in AreaLevel]),
    help="层级：county / township / village / grid",
)
@click.option("--crs", help="覆盖文件自带的坐标系：EPSG:4326、EPSG:4490、EPSG:4513-4554 或 gcj02")
@click.option("--code-field", help="区划代码字段名")
@click.option("--name-field", help="名称字段名")
@click.option("--parent-field", help="上级代码字段名（默认取代码前缀）")
@click.option("--tolerance", type=float, help="允许位于上级之外的面积比例（默认 0.05）")
@click.option(
    "--repair", is_flag=True, help="自动修复无效多边形（自相交等）并列出；默认拒绝整个文件"
)
@click.option(
    "--allow-overlap", is_flag=True, help="允许同级区划相互重叠并列出重叠面积；默认拒绝整个文件"
)
def import_command(
    file, level, crs, code_field, name_field, parent_field, tolerance, repair, allow_overlap
):
    """Import one level of boundaries from GeoJSON, Shapefile (.shp or .zip) or GeoPackage.

    Invalid polygons and overlapping siblings refuse the whole file unless --repair or
    --allow-overlap says they are wanted.
    """
    session = get_session()
    progress = TerminalProgress()
    report = commit_or_exit(
        session,
        progress,
        lambda: import_areas(
            session,
            file,
            level,
            crs=crs,
            code_field=code_field,
            name_field=name_field,
            parent_field=parent_field,
            outside_tolerance=tolerance
            if tolerance is not None
            else current_app.config["IMPORT_OUTSIDE_TOLERANCE"],
            area_epsilon_m2=current_app.config["IMPORT_AREA_EPSILON_M2"],
            progress=progress,
            repair=repair,
            allow_overlap=allow_overlap,
        ),
        ImportRejected,
    )
    click.echo("\n".join(report.lines()))


def init_app(app: Flask) -> None:
    app.cli.add_command(grid_cli)
