"""Build the llmroute Grafana dashboard from :mod:`llmroute_dev.monitoring.panels` with Grafana's typed
builders (``grafana-foundation-sdk``, a development dependency: ``pip install -e '.[dev]'``).

``python -m llmroute_dev.monitoring.dashboard`` prints the JSON; ``make generate`` writes it to
``monitoring/dashboards/llmroute.json`` and the Helm chart's copy, and a test fails when they drift.
Variables: ``datasource`` (any Prometheus), ``namespace`` and ``route`` (from the proxies'
``llmroute_proxy_config_info``; ``route`` is multi-select, all routes of the namespace by default).
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, statetimeline, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm

from llmroute_dev.monitoring.panels import ROWS
from llmroute_dev.monitoring.promql import Panel

UID = "llmroute"
TITLE = "llmroute"
DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
HEIGHT = {"timeseries": 8, "state": 6, "stat": 4}
REF_IDS = "ABCDEFGHIJ"


def _variables() -> list[Any]:
    datasource = db.DatasourceVariable("datasource").label("Data source").type("prometheus")
    namespace = (
        db.QueryVariable("namespace")
        .label("Namespace")
        .datasource(DATASOURCE)
        .query("label_values(llmroute_proxy_config_info, route)")
        .regex("/^([^/]+)\\/.*/")  # the namespace part of <namespace>/<name>
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
    )
    route = (
        db.QueryVariable("route")
        .label("Route")
        .datasource(DATASOURCE)
        .query('label_values(llmroute_proxy_config_info{route=~"$namespace/.*"}, route)')
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
    )
    return [datasource, namespace, route]


def _targets(panel: Panel) -> list[Any]:
    return [
        prometheus.Dataquery().expr(q.expr).legend_format(q.legend).ref_id(REF_IDS[i]).datasource(DATASOURCE)
        for i, q in enumerate(panel.queries)
    ]


def _mappings(panel: Panel) -> list[dm.ValueMapping]:
    if not panel.mappings:
        return []
    options = {
        str(value): dm.ValueMappingResult(text=text, color=color, index=i)
        for i, (value, text, color) in enumerate(panel.mappings)
    }
    return [dm.ValueMap(options=options)]


def _panel(panel: Panel) -> Any:
    built: Any
    if panel.kind == "stat":
        last = cb.ReduceDataOptions().calcs(["lastNotNull"])
        built = stat.Panel().graph_mode(common.BigValueGraphMode.AREA).reduce_options(last)
    elif panel.kind == "state":
        built = statetimeline.Panel().show_value(common.VisibilityMode.NEVER).mappings(_mappings(panel))
    else:
        legend = (
            cb.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
        )
        built = timeseries.Panel().legend(legend).fill_opacity(10).line_width(1)
    return (
        built.title(panel.title)
        .description(panel.description)
        .unit(panel.unit)
        .datasource(DATASOURCE)
        .targets(_targets(panel))
        .span(panel.width)
        .height(HEIGHT[panel.kind])
    )


def build() -> dict[str, Any]:
    """The dashboard as the JSON object Grafana imports (a ``dict``)."""
    board = (
        db.Dashboard(TITLE)
        .uid(UID)
        .description("llmroute: traffic, latency, upstream health, scaling and limits per LLMRoute")
        .tags(["llmroute", "llm", "gateway"])
        .editable()
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .time("now-3h", "now")
        .refresh("30s")
        .timezone("browser")
        .variables(_variables())
    )
    ids = itertools.count(1)  # unique panel ids, rows included: Grafana links and repeats refer to them
    for row in ROWS:
        board = board.with_row(db.Row(row.title).id(next(ids)))
        for panel in row.panels:
            board = board.with_panel(_panel(panel).id(next(ids)))
    encoded: dict[str, Any] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    return encoded


def render() -> str:
    """The dashboard JSON as written to the repository: sorted keys, two-space indent, final newline."""
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(render(), end="")
