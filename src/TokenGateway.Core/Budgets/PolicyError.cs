namespace TokenGateway.Core.Budgets;

/// <summary>One validation problem in a policy: the JSON path of the field (e.g. <c>budget.usd</c>) and what is wrong.</summary>
public sealed record PolicyError(string Field, string Message);
