"""The job service: REST API and dashboard over RLJobs on a cluster or local run directories."""
