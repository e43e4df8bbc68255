from tunebench.run_summary import training_wall_seconds


def test_training_wall_seconds_prefers_the_total_over_resumes():
    assert training_wall_seconds({"wall_seconds": 40.0, "wall_seconds_this_invocation": 12.5}) == 40.0
    # resumed from a checkpoint that predates the record: only this invocation's time is known
    assert training_wall_seconds({"wall_seconds": None, "wall_seconds_this_invocation": 12.5}) == 12.5
    assert training_wall_seconds({"train_seconds": 7.0}) == 7.0  # the oldest summaries' key
    assert training_wall_seconds({"parameters": 10}) is None
