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

    /// <summary>
    /// A 400 when a JSON body repeats a property name anywhere. Minimal APIs bind <c>JsonNode</c> lazily, so a repeated
    /// name would otherwise surface as a 500 when an object is first read (or "last one wins" in typed bodies).
    /// </summary>
    public static IResult? DuplicateProperty(System.Text.Json.Nodes.JsonNode? body)
    {
        try
        {
            Walk(body);
            return null;
        }
        catch (Exception ex) when (ex is ArgumentException or System.Text.Json.JsonException)
        {
            return Invalid("body", "The JSON body repeats a property name: " + ex.Message);
        }

        static void Walk(System.Text.Json.Nodes.JsonNode? node)
        {
            switch (node)
            {
                case System.Text.Json.Nodes.JsonObject obj:
                    foreach (var (_, value) in obj)
                    {
                        Walk(value);
                    }

                    break;
                case System.Text.Json.Nodes.JsonArray array:
                    foreach (var item in array)
                    {
                        Walk(item);
                    }

                    break;
            }
        }
    }

    public static IResult Invalid(string field, string message) =>
        Create(400, "invalid_request", message, new Dictionary<string, string[]> { [field] = [message] });
}
