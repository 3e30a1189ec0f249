"""The method: the top-k SAE, its training (PASS included), steering (VS2, VS2++, the FVU gate), retrieval, metrics.
Imports nothing of vs2mini but `vs2mini.disk`."""
