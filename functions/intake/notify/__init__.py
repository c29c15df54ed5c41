"""What Intake sends by email: acknowledgments, SLA notifications (and, later, digests and surveys)."""
