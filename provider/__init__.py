"""The provider's back office for 400 numbers (issue 12): the number inventory and its vanity
grading, the life cycle of a number from reservation to cancellation, the audit's working-day
clock, and the package catalogue the numbers are sold with."""
