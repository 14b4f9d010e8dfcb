"""Eureka's control plane: the RLJob CRD, the kopf operator, the job service and the dashboard."""

__version__ = "0.1.0"
