"""Field work from a phone: reports, photos, offline queue, sweep reports (排查) and coverage."""
