namespace TokenGateway.Endpoints;

/// <summary>ProblemDetails for the admin API, each with a stable <c>code</c> extension.</summary>
internal static class AdminProblems
{
    public static IResult Create(int status, string code, string detail, IDictionary<string, string[]>? errors = null)
    {
        var extensions = new Dictionary<string, object?> { ["code"] = code };
        if (errors is not null)
        {
            extensions["errors"] = errors;
        }

        return Results.Problem(statusCode: status, title: code.Replace('_', ' '), detail: detail, extensions: extensions);
    }

    public static IResult NotFound(string what, string id) => Create(404, "not_found", $"{what} '{id}' does not exist.");

    public static IResult Invalid(string field, string message) =>
        Create(400, "invalid_request", message, new Dictionary<string, string[]> { [field] = [message] });
}
