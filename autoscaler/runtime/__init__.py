"""The running controller: build what a config needs, schedule the loop's jobs, serve probes, hold the clock."""
