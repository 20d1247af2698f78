using System.Text.Json.Nodes;
using TokenGateway.Core.StructuredOutput;

namespace TokenGateway.Endpoints;

/// <summary>Admin API for the versioned named-schema registry (<c>/admin/schemas</c>, docs/structured-output.md).</summary>
internal static class AdminSchemaEndpoints
{
    public static RouteGroupBuilder MapAdminSchemas(this RouteGroupBuilder admin)
    {
        admin.MapPost("/schemas", CreateAsync);
        admin.MapGet("/schemas", async (ISchemaRegistry registry, CancellationToken ct) =>
        {
            var list = await registry.ListAsync(ct);
            return Results.Ok(new
            {
                schemas = list.Select(s => new { name = s.Name, latestVersion = s.LatestVersion, versions = s.Versions, updatedAt = s.UpdatedAt }),
            });
        });
        admin.MapGet("/schemas/{name}", async (string name, ISchemaRegistry registry, CancellationToken ct) =>
            await registry.GetLatestAsync(name, ct) is { } s ? Results.Text(ToJson(s).ToJsonString(), "application/json") : AdminProblems.NotFound("Schema", name));
        admin.MapGet("/schemas/{name}/versions", async (string name, ISchemaRegistry registry, CancellationToken ct) =>
        {
            var versions = await registry.ListVersionsAsync(name, ct);
            return versions.Count == 0
                ? AdminProblems.NotFound("Schema", name)
                : Results.Text(new JsonObject { ["versions"] = new JsonArray([.. versions.Select(ToJson)]) }.ToJsonString(), "application/json");
        });
        admin.MapGet("/schemas/{name}/versions/{version:int}", async (string name, int version, ISchemaRegistry registry, CancellationToken ct) =>
            await registry.GetVersionAsync(name, version, ct) is { } s
                ? Results.Text(ToJson(s).ToJsonString(), "application/json")
                : AdminProblems.NotFound("Schema version", $"{name}@{version}"));
        return admin;
    }

    private static async Task<IResult> CreateAsync(JsonNode? body, ISchemaRegistry registry, CancellationToken ct)
    {
        if (AdminProblems.DuplicateProperty(body) is { } duplicate)
        {
            return duplicate;
        }

        if (body is not JsonObject o)
        {
            return AdminProblems.Invalid("$", "The body must be a JSON object: {\"name\": \"...\", \"schema\": {...}, \"description\": \"...\"}.");
        }

        var name = o["name"] is JsonValue n && n.TryGetValue<string>(out var text) ? text : null;
        if (!SchemaName.IsValid(name))
        {
            return AdminProblems.Invalid("name", $"name is required: 1-{SchemaName.MaxLength} letters, digits, '.', '_' or '-'.");
        }

        if (o["schema"] is not JsonObject schema)
        {
            return AdminProblems.Invalid("schema", "schema is required and must be a JSON Schema object.");
        }

        if (!CompiledSchema.TryCompile(schema, out _, out var error))
        {
            return AdminProblems.Invalid("schema", $"schema is not a valid JSON Schema: {error}");
        }

        string? description = null;
        if (o["description"] is { } d)
        {
            if (d is not JsonValue dv || !dv.TryGetValue(out description))
            {
                return AdminProblems.Invalid("description", "description must be a string.");
            }
        }

        var stored = await registry.AddVersionAsync(name!, schema, description, ct);
        return Results.Text(ToJson(stored).ToJsonString(), "application/json", statusCode: StatusCodes.Status201Created);
    }

    private static JsonObject ToJson(StoredSchema s)
    {
        var strict = StrictSchema.TryConvert(s.Schema, out _, out var reason);
        return new JsonObject
        {
            ["name"] = s.Name,
            ["version"] = s.Version,
            ["description"] = s.Description,
            ["createdAt"] = s.CreatedAt.ToString("O", System.Globalization.CultureInfo.InvariantCulture),
            ["strictCompatible"] = strict,
            ["strictIncompatibility"] = reason,
            ["schema"] = s.Schema.DeepClone(),
        };
    }
}
