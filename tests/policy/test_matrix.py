from policy import load_policy
from policy.matrix import decision_matrix, lane_matrix


def test_matrix_covers_every_job_type_and_class_in_order():
    policy = load_policy()
    matrix = decision_matrix(policy)
    assert list(matrix) == policy.job_type_names
    assert all(list(row) == policy.class_names for row in matrix.values())
    assert all(d.declared_data_class == cls for row in matrix.values() for cls, d in row.items())


def test_lane_matrix_is_plain_strings():
    lanes = lane_matrix(load_policy())
    assert lanes["public_research"]["public"] == "background"
    assert lanes["support_analysis"]["confidential"] == "stateless"
    assert lanes["coding_analysis"]["restricted"] == "denied"
    assert all(type(v) is str for row in lanes.values() for v in row.values())
