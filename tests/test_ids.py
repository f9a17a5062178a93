"""Global ids (``api.ids``): one type name per node type, shared by both transports."""

import uuid

import pytest
from strawberry.types.base import get_object_definition

from api.errors import InvalidInput
from api.ids import NodeType, from_global_id, node_key, to_global_id
from schema.root import NODE_TYPES


def test_each_node_type_puts_its_graphql_name_in_its_ids() -> None:
    named = {cls.node_type: get_object_definition(cls, strict=True).name for cls in NODE_TYPES}
    assert named == {node_type: node_type.value for node_type in NodeType}


def test_a_global_id_carries_its_type_and_key() -> None:
    key = uuid.uuid4()
    assert from_global_id(to_global_id(NodeType.FETCH_JOB, key)) == (NodeType.FETCH_JOB, key)
    assert node_key(to_global_id(NodeType.USER, key), NodeType.USER) == key


@pytest.mark.parametrize("given", ["garbage", "", "Tm90aGluZzox", "VXNlcjpub3QtYS11dWlk"])
def test_anything_else_is_no_id(given: str) -> None:
    assert from_global_id(given) is None


def test_an_id_of_another_type_is_bad_input_for_the_field() -> None:
    with pytest.raises(InvalidInput) as refused:
        node_key(to_global_id(NodeType.USER, uuid.uuid4()), NodeType.API_KEY, field="key")
    assert refused.value.fields == {"key": ["Not the id of an API key."]}
