"""tre's benchmarks: each module compares tre against a baseline in the same run."""
