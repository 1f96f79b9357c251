"""The values.yaml conventions the chart's schema and README table are generated from (helm-docs style)."""

from __future__ import annotations

import pytest

from llmroute_dev.chartvalues import readme_with_table, values_schema, values_table

VALUES = """\
image:
  # -- The tag.
  tag: ""
  # -- Pull policy.
  # @schema {"enum": ["Always", "Never"]}
  pullPolicy: Always
# section comment, not a description
# -- (map) Pod annotations.
podAnnotations:
  a: "1"
# -- (object) Affinity, a Kubernetes type.
affinity: {}
# -- Replicas, over
# two lines.
replicas: 1
# -- Arguments.
args: [--verbose]
"""


def test_objects_listed_in_values_are_closed_and_hinted_ones_open() -> None:
    schema = values_schema(VALUES)
    assert schema["additionalProperties"] is False and "global" in schema["properties"]
    image = schema["properties"]["image"]
    assert image["additionalProperties"] is False and set(image["properties"]) == {"tag", "pullPolicy"}
    assert image["properties"]["pullPolicy"]["enum"] == ["Always", "Never"]
    assert schema["properties"]["podAnnotations"]["additionalProperties"] == {"type": "string"}
    assert schema["properties"]["affinity"] == {
        "description": "Affinity, a Kubernetes type.",
        "type": "object",
    }
    assert schema["properties"]["replicas"]["description"] == "Replicas, over two lines."
    assert schema["properties"]["args"]["items"] == {"type": "string"}


def test_table_lists_every_leaf_with_type_default_and_description() -> None:
    table = values_table(VALUES).splitlines()
    assert table[2] == '| `image.tag` | string | `""` | The tag. |'
    assert '| `podAnnotations` | map | `{"a":"1"}` | Pod annotations. |' in table
    assert len(table) == 2 + 6
    readme = "intro\n<!-- values:begin -->\nold\n<!-- values:end -->\nend\n"
    assert (
        readme_with_table(readme, VALUES)
        == f"intro\n<!-- values:begin -->\n{values_table(VALUES)}<!-- values:end -->\nend\n"
    )


def test_an_undocumented_value_is_refused() -> None:
    with pytest.raises(ValueError, match=r"without a .# --. description: image\.tag"):
        values_schema("image:\n  tag: x\n")
