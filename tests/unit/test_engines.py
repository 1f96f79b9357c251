"""Reading an engine's load from its metrics page: vLLM (current and older gauges), SGLang, TGI, Auto."""

from __future__ import annotations

import pytest

from llmroute.proxy.engines import EngineLoad, read_engine_load
from llmroute.proxy.signals import UpstreamSignals, observed_capacity

MODEL = 'model_name="meta-llama/Llama-3.1-8B-Instruct"'

VLLM = f"""# HELP python_gc_objects_collected_total Objects collected during gc
# TYPE python_gc_objects_collected_total counter
python_gc_objects_collected_total{{generation="0"}} 12873.0
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{{engine="0",{MODEL}}} 12.0
vllm:num_requests_running{{engine="1",{MODEL}}} 10.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{{engine="0",{MODEL}}} 3.0
vllm:num_requests_waiting{{engine="1",{MODEL}}} 1.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{{engine="0",{MODEL}}} 0.42
vllm:kv_cache_usage_perc{{engine="1",{MODEL}}} 0.57
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{{engine="0",{MODEL}}} 123456.0
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{{engine="0",le="0.001",{MODEL}}} 0.0
vllm:time_to_first_token_seconds_bucket{{engine="0",le="+Inf",{MODEL}}} 4211.0
vllm:time_to_first_token_seconds_count{{engine="0",{MODEL}}} 4211.0
vllm:time_to_first_token_seconds_sum{{engine="0",{MODEL}}} 291.3
"""

VLLM_OLD = f"""# HELP vllm:num_requests_running Number of requests currently running on GPU.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{{{MODEL}}} 4.0
# HELP vllm:num_requests_swapped Number of requests swapped to CPU.
# TYPE vllm:num_requests_swapped gauge
vllm:num_requests_swapped{{{MODEL}}} 0.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{{{MODEL}}} 0.0
# HELP vllm:gpu_cache_usage_perc GPU KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{{{MODEL}}} 0.25
"""

SGLANG = f"""# HELP sglang:num_running_reqs The number of running requests.
# TYPE sglang:num_running_reqs gauge
sglang:num_running_reqs{{{MODEL}}} 30.0
# HELP sglang:num_queue_reqs The number of requests in the waiting queue.
# TYPE sglang:num_queue_reqs gauge
sglang:num_queue_reqs{{{MODEL}}} 7.0
# HELP sglang:token_usage The token usage.
# TYPE sglang:token_usage gauge
sglang:token_usage{{{MODEL}}} 0.93
# HELP sglang:gen_throughput The generation throughput (token/s).
# TYPE sglang:gen_throughput gauge
sglang:gen_throughput{{{MODEL}}} 812.5
"""

TGI = """# TYPE tgi_queue_size gauge
tgi_queue_size 5
# TYPE tgi_batch_current_size gauge
tgi_batch_current_size 16
# TYPE tgi_request_duration histogram
tgi_request_duration_bucket{le="0.5"} 10
tgi_request_duration_bucket{le="+Inf"} 20
tgi_request_duration_sum 31.0
tgi_request_duration_count 20
"""


@pytest.mark.parametrize(
    ("page", "engine", "expected"),
    [
        (VLLM, "vLLM", EngineLoad("vLLM", waiting=4.0, running=22.0, kv_cache_usage=0.57)),
        (VLLM, "Auto", EngineLoad("vLLM", waiting=4.0, running=22.0, kv_cache_usage=0.57)),
        (VLLM_OLD, "Auto", EngineLoad("vLLM", waiting=0.0, running=4.0, kv_cache_usage=0.25)),
        (SGLANG, "SGLang", EngineLoad("SGLang", waiting=7.0, running=30.0, kv_cache_usage=0.93)),
        (SGLANG, "Auto", EngineLoad("SGLang", waiting=7.0, running=30.0, kv_cache_usage=0.93)),
        (TGI, "TGI", EngineLoad("TGI", waiting=5.0, running=16.0, kv_cache_usage=None)),
        (TGI, "Auto", EngineLoad("TGI", waiting=5.0, running=16.0, kv_cache_usage=None)),
    ],
    ids=["vllm", "vllm-auto", "vllm-old-auto", "sglang", "sglang-auto", "tgi", "tgi-auto"],
)
def test_reads_each_engine(page: str, engine: str, expected: EngineLoad) -> None:
    assert read_engine_load(page, engine) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("page", "engine"),
    [
        ("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1.5\n", "Auto"),
        (VLLM, "SGLang"),  # the named engine's gauges are not there
        ("", "Auto"),
    ],
)
def test_a_page_without_known_gauges_reads_as_none(page: str, engine: str) -> None:
    assert read_engine_load(page, engine) is None  # type: ignore[arg-type]


def test_a_page_that_is_not_prometheus_text_is_an_error() -> None:
    with pytest.raises(ValueError):
        read_engine_load('vllm:num_requests_waiting{model_name="m" 3\n', "vLLM")


def test_a_kv_share_out_of_range_is_clamped() -> None:
    load = read_engine_load("vllm:kv_cache_usage_perc 1.7\nvllm:num_requests_running 3\n", "vLLM")
    assert load is not None and load.kv_cache_usage == 1.0


@pytest.mark.parametrize(
    ("load", "capacity"),
    [
        (EngineLoad("vLLM", waiting=0, running=8, kv_cache_usage=0.25), 32.0),  # the cache holds 4x as many
        (EngineLoad("vLLM", waiting=5, running=16, kv_cache_usage=0.5), 16.0),  # queueing: the batch is full
        (EngineLoad("TGI", waiting=3, running=12, kv_cache_usage=None), 12.0),
        (EngineLoad("TGI", waiting=0, running=12, kv_cache_usage=None), None),  # room left: unknown
        (EngineLoad("vLLM", waiting=0, running=0, kv_cache_usage=0.0), None),  # idle tells nothing
    ],
)
def test_capacity_a_reading_implies(load: EngineLoad, capacity: float | None) -> None:
    assert observed_capacity(load) == capacity


def test_outstanding_follows_this_proxys_sends_since_the_reading_and_goes_stale() -> None:
    signals = UpstreamSignals(stale_after=3.0)
    signals.reading("a", EngineLoad("vLLM", waiting=2, running=8, kv_cache_usage=0.5), now=100.0, inflight=4)
    assert signals.capacity("a") == 8.0  # requests wait: the batch of 8 is full
    assert signals.outstanding("a", 100.5, inflight=4) == 10.0
    assert signals.outstanding("a", 100.5, inflight=9) == 15.0  # five sent since
    assert signals.outstanding("a", 100.5, inflight=0) == 6.0  # four of ours finished
    assert signals.outstanding("a", 103.0, inflight=4) == 10.0
    assert signals.outstanding("a", 103.1, inflight=4) is None  # stale: least connections from here
    assert signals.fresh("a", 103.1) is None
    assert signals.capacity("a") == 8.0  # what was learned stays


def test_outstanding_is_never_below_this_proxys_own_requests() -> None:
    signals = UpstreamSignals()
    signals.reading("a", EngineLoad("vLLM", waiting=0, running=0, kv_cache_usage=0.0), now=0.0, inflight=3)
    assert signals.outstanding("a", 0.1, inflight=2) == 2.0
