"""Areas, categories, cases and their event log, on PostGIS

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

CATEGORIES = [
    ("land_acquisition", "征地拆迁", "征收土地、房屋拆迁与补偿安置"),
    ("mass_finance", "涉众型金融", "非法集资等涉众型金融问题"),
    ("housing_property", "房产楼盘住房", "商品房交付、办证、质量等"),
    ("migrant_wages", "农民工工资", "拖欠农民工工资"),
    ("labour_dispute", "劳资纠纷", "劳动合同、工伤等劳资争议"),
    ("labour_security", "劳动和社会保障", "社保、养老、医保待遇"),
    ("natural_resources", "自然资源", "土地、林地、宅基地与矿产"),
    ("law_litigation", "涉法涉诉", "与诉讼、执行相关的诉求"),
    ("compound_management", "小区管理/物业", "住宅小区管理与物业服务"),
    ("old_compound", "老旧小区提质改造", "老旧小区改造"),
    ("water_supply", "供水/管网", "供水与管网"),
    ("utilities", "水电气", "水、电、燃气供应"),
    ("traffic_parking", "交通出行/停车", "道路交通、出行与停车"),
    ("education", "教育配套", "学校与教育配套"),
    ("fire_safety", "消防安全", "消防通道与火灾隐患"),
    ("environment", "生态环境", "污染与生态环境"),
    ("social_housing", "住房保障", "保障性住房"),
    ("neighbour_family", "邻里/婚姻家庭", "邻里、婚姻与家庭纠纷"),
    ("other", "其他", "其他事项"),
]

CHANNELS = "('visit','letter','online','sms','hotline','mailbox','leader','grid_sweep','video')"
STATUSES = (
    "('registered','accepted','not_accepted','assigned','in_progress','concluded',"
    "'reviewing','reexamining','escalated','resolved','closed')"
)


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")

    op.create_table(
        "areas",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(20), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column(
            "parent_id", sa.Integer(), sa.ForeignKey("areas.id", name="fk_areas_parent_id_areas")
        ),
        sa.Column("county_code", sa.String(6), nullable=False),
        sa.Column("township_code", sa.String(9)),
        sa.Column("village_code", sa.String(12)),
        sa.Column("population", sa.Integer()),
        sa.Column("households", sa.Integer()),
        sa.Column(
            "geom",
            geoalchemy2.Geometry("MULTIPOLYGON", srid=4326, spatial_index=False),
            nullable=False,
        ),
        sa.Column(
            "label_point",
            geoalchemy2.Geometry("POINT", srid=4326, spatial_index=False),
            nullable=False,
        ),
        sa.Column("area_m2", sa.Float(), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name="pk_areas"),
        sa.UniqueConstraint("code", name="uq_areas_code"),
        sa.CheckConstraint(
            "level IN ('county','township','village','grid')", name=op.f("ck_areas_level")
        ),
        sa.CheckConstraint("code ~ '^[0-9]{6,20}$'", name=op.f("ck_areas_code_digits")),
        sa.CheckConstraint(
            "population IS NULL OR population >= 0", name=op.f("ck_areas_population")
        ),
        sa.CheckConstraint(
            "households IS NULL OR households >= 0", name=op.f("ck_areas_households")
        ),
    )
    op.create_index("ix_areas_parent_id", "areas", ["parent_id"])
    op.create_index(
        "ix_areas_code_prefix", "areas", ["code"], postgresql_ops={"code": "text_pattern_ops"}
    )
    op.create_index("ix_areas_level_township", "areas", ["level", "township_code"])
    op.create_index("ix_areas_level_village", "areas", ["level", "village_code"])
    op.create_index("idx_areas_geom", "areas", ["geom"], postgresql_using="gist")
    op.create_index(
        "ix_areas_grid_geom",
        "areas",
        ["geom"],
        postgresql_using="gist",
        postgresql_where=sa.text("level = 'grid'"),
    )

    op.create_table(
        "settings",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.String(2000), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_settings"),
    )

    categories = op.create_table(
        "categories",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("name", sa.String(60), nullable=False),
        sa.Column("description", sa.String(400), server_default="", nullable=False),
        sa.Column("sort_order", sa.Integer(), server_default="0", nullable=False),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_categories"),
        sa.UniqueConstraint("code", name="uq_categories_code"),
        sa.UniqueConstraint("name", name="uq_categories_name"),
    )
    op.bulk_insert(
        categories,
        [
            {"code": c, "name": n, "description": d, "sort_order": i * 10}
            for i, (c, n, d) in enumerate(CATEGORIES, start=1)
        ],
    )

    op.create_table(
        "cases",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("client_id", sa.Uuid()),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("case_class", sa.String(16), server_default="request", nullable=False),
        sa.Column("people_count", sa.Integer(), server_default="1", nullable=False),
        sa.Column("batch_count", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "location",
            geoalchemy2.Geometry("POINT", srid=4326, spatial_index=False),
            nullable=False,
        ),
        sa.Column("location_approx", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("location_accuracy_m", sa.Float()),
        sa.Column("grid_id", sa.Integer(), nullable=False),
        sa.Column("grid_code", sa.String(20), nullable=False),
        sa.Column("village_code", sa.String(12), nullable=False),
        sa.Column("township_code", sa.String(9), nullable=False),
        sa.Column("county_code", sa.String(6), nullable=False),
        sa.Column("status", sa.String(16), server_default="registered", nullable=False),
        sa.Column(
            "reported_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("accepted_at", sa.DateTime(timezone=True)),
        sa.Column("concluded_at", sa.DateTime(timezone=True)),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("due_at", sa.DateTime(timezone=True)),
        sa.Column("opinion", sa.String(16)),
        sa.Column("satisfaction", sa.String(16)),
        sa.Column("resolved_level", sa.String(16)),
        sa.Column("is_first", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("repeat_of_id", sa.BigInteger()),
        sa.Column("skip_level", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("petitioner_name", sa.String(100)),
        sa.Column("petitioner_phone", sa.String(32)),
        sa.Column("petitioner_id_number", sa.String(32)),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cases"),
        sa.UniqueConstraint("number", name="uq_cases_number"),
        sa.ForeignKeyConstraint(
            ["category_id"], ["categories.id"], name="fk_cases_category_id_categories"
        ),
        sa.ForeignKeyConstraint(["grid_id"], ["areas.id"], name="fk_cases_grid_id_areas"),
        sa.ForeignKeyConstraint(["repeat_of_id"], ["cases.id"], name="fk_cases_repeat_of_id_cases"),
        sa.CheckConstraint(f"channel IN {CHANNELS}", name=op.f("ck_cases_channel")),
        sa.CheckConstraint(
            "case_class IN ('suggestion','accusation','request')", name=op.f("ck_cases_case_class")
        ),
        sa.CheckConstraint(f"status IN {STATUSES}", name=op.f("ck_cases_status")),
        sa.CheckConstraint(
            "opinion IS NULL OR opinion IN ('support','explain','not_support')",
            name=op.f("ck_cases_opinion"),
        ),
        sa.CheckConstraint(
            "satisfaction IS NULL OR satisfaction IN ('satisfied','basically','dissatisfied')",
            name=op.f("ck_cases_satisfaction"),
        ),
        sa.CheckConstraint(
            "resolved_level IS NULL OR resolved_level IN ('village','township','county','above')",
            name=op.f("ck_cases_resolved_level"),
        ),
        sa.CheckConstraint("people_count >= 1", name=op.f("ck_cases_people_count")),
        sa.CheckConstraint("batch_count >= 1", name=op.f("ck_cases_batch_count")),
    )
    # Only cases sent by a device carry a client id: a partial unique index keeps bulk
    # loads (no client id) from paying for a million NULL entries.
    op.create_index(
        "uq_cases_client_id",
        "cases",
        ["client_id"],
        unique=True,
        postgresql_where=sa.text("client_id IS NOT NULL"),
    )
    op.create_index(
        "ix_cases_repeat_of_id",
        "cases",
        ["repeat_of_id"],
        postgresql_where=sa.text("repeat_of_id IS NOT NULL"),
    )
    op.create_index("ix_cases_township_reported", "cases", ["township_code", "reported_at"])
    op.create_index("ix_cases_village_reported", "cases", ["village_code", "reported_at"])
    op.create_index("ix_cases_grid_reported", "cases", ["grid_id", "reported_at"])
    op.create_index("ix_cases_reported_brin", "cases", ["reported_at"], postgresql_using="brin")
    op.create_index("idx_cases_location", "cases", ["location"], postgresql_using="gist")

    op.create_table(
        "case_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("actor_id", sa.Integer()),
        sa.Column("actor_name", sa.String(100)),
        sa.Column("from_status", sa.String(16)),
        sa.Column("to_status", sa.String(16)),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("data", postgresql.JSONB()),
        sa.PrimaryKeyConstraint("id", name="pk_case_events"),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name="fk_case_events_case_id_cases", ondelete="RESTRICT"
        ),
    )
    op.create_index("ix_case_events_case_at", "case_events", ["case_id", "at"])
    # The event log is append-only: the database itself refuses to change history.
    op.execute(
        """
        CREATE FUNCTION forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'table % is append-only', TG_TABLE_NAME
                USING ERRCODE = 'insufficient_privilege';
        END $$;
        CREATE TRIGGER case_events_append_only
            BEFORE UPDATE OR DELETE ON case_events
            FOR EACH ROW EXECUTE FUNCTION forbid_change();
        """
    )


def downgrade() -> None:
    op.drop_table("case_events")
    op.execute("DROP FUNCTION IF EXISTS forbid_change()")
    op.drop_table("cases")
    op.drop_table("categories")
    op.drop_table("settings")
    op.drop_table("areas")
