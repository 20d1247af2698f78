using System.Text.Json;
using System.Text.Json.Nodes;
using BitFaster.Caching.Lru;
using Json.Schema;

namespace TokenGateway.Core.StructuredOutput;

/// <summary>One validation error: where in the answer (JSON pointer) and what is wrong.</summary>
public sealed record SchemaError(string Pointer, string Message);

/// <summary>The outcome of validating one answer.</summary>
public sealed record SchemaValidation(bool IsValid, IReadOnlyList<SchemaError> Errors)
{
    /// <summary>A valid answer.</summary>
    public static SchemaValidation Valid { get; } = new(true, []);
}

/// <summary>A JSON Schema compiled once (JsonSchema.Net) that validates answers and reports JSON-pointer errors.</summary>
public sealed class CompiledSchema
{
    private const int MaxErrors = 20;
    private static readonly EvaluationOptions _flag = new() { OutputFormat = OutputFormat.Flag, RequireFormatValidation = true };
    private static readonly EvaluationOptions _list = new() { OutputFormat = OutputFormat.List, RequireFormatValidation = true };
    private const int MaxCached = 512;

    // Bounded LRU keyed by schema text: request schemas are client input, so the least recently used are evicted one
    // by one (no whole-cache wipe when full).
    private static readonly ConcurrentLru<string, CompiledSchema> _cache = new(Environment.ProcessorCount, MaxCached, StringComparer.Ordinal);

    private readonly JsonSchema _schema;

    private CompiledSchema(JsonSchema schema, JsonObject source)
    {
        _schema = schema;
        Source = source;
    }

    /// <summary>The schema as compiled.</summary>
    public JsonObject Source { get; }

    /// <summary>
    /// Compiles <paramref name="schema"/> (cached by its text: the same schema sent on every request compiles once);
    /// false with a message when it is not a valid JSON Schema.
    /// </summary>
    public static bool TryCompile(JsonObject schema, out CompiledSchema? compiled, out string? error)
    {
        ArgumentNullException.ThrowIfNull(schema);
        var text = schema.ToJsonString();
        if (_cache.TryGet(text, out compiled))
        {
            error = null;
            return true;
        }

        try
        {
            // Each schema gets its own registry and base URI: request schemas must never collide or accumulate globally.
            var options = new BuildOptions { SchemaRegistry = new SchemaRegistry() };
            using var document = JsonDocument.Parse(text);
            var built = JsonSchema.Build(document.RootElement.Clone(), options, new Uri($"https://schemas.tokengateway.local/{Guid.NewGuid():N}"));
            compiled = new CompiledSchema(built, (JsonObject)schema.DeepClone());
            // Resolve every $ref now so a dangling reference is a 400 on the request, not a 502 on the answer.
            compiled.Validate("null");
        }
        catch (Exception ex) when (ex is JsonSchemaException or RefResolutionException or JsonException or ArgumentException
            or InvalidOperationException or KeyNotFoundException or NotSupportedException or FormatException or UriFormatException)
        {
            compiled = null;
            error = ex.Message;
            return false;
        }

        _cache.AddOrUpdate(text, compiled);
        error = null;
        return true;
    }

    /// <summary>Validates answer text: a JSON parse failure is reported at pointer <c>""</c>.</summary>
    public SchemaValidation Validate(string answer)
    {
        ArgumentNullException.ThrowIfNull(answer);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(answer);
        }
        catch (JsonException ex)
        {
            return new SchemaValidation(false, [new SchemaError("", "The answer is not valid JSON: " + ex.Message)]);
        }

        using (document)
        {
            return Validate(document.RootElement);
        }
    }

    /// <summary>Validates a parsed answer.</summary>
    public SchemaValidation Validate(JsonElement answer)
    {
        // Most answers are valid: the flag pass is cheap; error details are collected only when they are needed.
        if (_schema.Evaluate(answer, _flag).IsValid)
        {
            return SchemaValidation.Valid;
        }

        var results = _schema.Evaluate(answer, _list);

        var errors = new List<SchemaError>();
        Collect(results, errors);
        if (errors.Count == 0)
        {
            errors.Add(new SchemaError("", "The answer does not match the schema."));
        }

        return new SchemaValidation(false, errors);
    }

    private static void Collect(EvaluationResults results, List<SchemaError> errors)
    {
        if (errors.Count >= MaxErrors)
        {
            return;
        }

        if (results.Errors is { Count: > 0 } own)
        {
            var pointer = results.InstanceLocation.ToString();
            foreach (var (_, message) in own)
            {
                if (errors.Count >= MaxErrors)
                {
                    return;
                }

                var error = new SchemaError(pointer, message);
                if (!errors.Contains(error))
                {
                    errors.Add(error);
                }
            }
        }

        if (results.Details is { } details)
        {
            foreach (var detail in details)
            {
                Collect(detail, errors);
            }
        }
    }
}
