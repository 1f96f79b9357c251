"""The demo (``make demo``): llmroute's main job end to end on loopback. :mod:`.main` is its command;
:mod:`.system` starts the parts, :mod:`.route` the LLMRoute and clients, :mod:`.loadgen` and
:mod:`.traceshape` the traffic, :mod:`.monitor` and :mod:`.report` what it shows and checks."""
