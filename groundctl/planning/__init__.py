"""Fleet planning: link budgets, forecasts and the plan."""
