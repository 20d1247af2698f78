using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Json.Schema;
using TokenGateway.Core.Caching;

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
/// <remarks>
/// Regexes from the schema (<c>pattern</c>, <c>patternProperties</c>) run with a match timeout and a per-validation
/// budget (<see cref="SchemaRegex"/>); running out makes the answer invalid. Compiled schemas are cached by their
/// text in a two-generation cache bounded by estimated bytes (<see cref="CacheGenerationBytes"/> per generation),
/// not by entry count: a few huge schemas cannot hold more memory than many small ones.
/// </remarks>
public sealed class CompiledSchema
{
    /// <summary>Estimated bytes one cache generation may hold (two generations are kept).</summary>
    public const long CacheGenerationBytes = 16L * 1024 * 1024;

    /// <summary>A schema whose estimate exceeds this is compiled but not cached.</summary>
    public const long MaxCachedSchemaBytes = CacheGenerationBytes / 8;

    // Measured (GC.GetTotalMemory over 200 compiles): a property-heavy schema retains about 33 bytes per character of
    // its text (JsonSchema.Net's node tree, the cloned JsonElement, our JsonObject copy, the key); a text-heavy one a
    // few bytes. 48 keeps the estimate on the safe side.
    private const int BytesPerSchemaChar = 48;
    private const int MaxErrors = 20;
    private static readonly EvaluationOptions _flag = new() { OutputFormat = OutputFormat.Flag, RequireFormatValidation = true };
    private static readonly EvaluationOptions _list = new() { OutputFormat = OutputFormat.List, RequireFormatValidation = true };
    private static readonly GenerationalCache<string, CompiledSchema> _cache = new(CacheGenerationBytes, static c => c.EstimatedBytes);

    private readonly JsonSchema _schema;

    private CompiledSchema(JsonSchema schema, JsonObject source, long estimatedBytes)
    {
        _schema = schema;
        Source = source;
        EstimatedBytes = estimatedBytes;
    }

    /// <summary>The schema as compiled.</summary>
    public JsonObject Source { get; }

    /// <summary>Estimated memory this compiled schema retains (what it costs in the cache).</summary>
    public long EstimatedBytes { get; }

    /// <summary>Estimated bytes held by the compiled-schema cache (tests, diagnostics).</summary>
    internal static long CachedBytes => _cache.Size;

    /// <summary>
    /// Compiles <paramref name="schema"/> (cached by its text: the same schema sent on every request compiles once);
    /// false with a message when it is not a valid JSON Schema.
    /// </summary>
    public static bool TryCompile(JsonObject schema, out CompiledSchema? compiled, out string? error)
    {
        ArgumentNullException.ThrowIfNull(schema);
        var text = schema.ToJsonString();
        if (_cache.TryGetValue(text, out compiled))
        {
            error = null;
            return true;
        }

        try
        {
            // Each schema gets its own registry and base URI: request schemas must never collide or accumulate globally.
            // The dialects are the library's with timed regex keywords, whatever $schema the client names.
            var options = new BuildOptions
            {
                SchemaRegistry = new SchemaRegistry(),
                DialectRegistry = SchemaRegex.Registry,
                Dialect = SchemaRegex.DefaultDialect,
            };
            using var document = JsonDocument.Parse(text);
            var built = JsonSchema.Build(document.RootElement.Clone(), options, new Uri($"https://schemas.tokengateway.local/{Guid.NewGuid():N}"));
            if (!SchemaRegex.AllTimed(built))
            {
                // A $schema naming a meta-schema by vocabulary builds a dialect from the library's own keywords.
                compiled = null;
                error = "The schema's $schema selects a dialect whose regular expressions cannot be time-limited; omit $schema or name a standard draft.";
                return false;
            }

            compiled = new CompiledSchema(built, (JsonObject)schema.DeepClone(), (long)text.Length * BytesPerSchemaChar);
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

        if (compiled.EstimatedBytes <= MaxCachedSchemaBytes)
        {
            _cache.Add(text, compiled);
        }

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

    /// <summary>Validates a parsed answer; a schema regex that runs out of time makes it invalid.</summary>
    public SchemaValidation Validate(JsonElement answer)
    {
        using var budget = SchemaRegex.BeginValidation();
        try
        {
            return ValidateCore(answer);
        }
        catch (RegexMatchTimeoutException ex)
        {
            return new SchemaValidation(false, [new SchemaError("", TimeoutMessage(ex.Pattern))]);
        }
    }

    private static string TimeoutMessage(string pattern)
    {
        var shown = pattern.Length <= 64 ? pattern : pattern[..64] + "…";
        return $"The schema's regular expression '{shown}' did not finish within the gateway's limit " +
            $"({SchemaRegex.MatchTimeout.TotalMilliseconds:0} ms per match, {SchemaRegex.ValidationBudget.TotalMilliseconds:0} ms per answer); " +
            "the answer is treated as invalid. Simplify the pattern (avoid nested quantifiers such as (a+)+).";
    }

    private SchemaValidation ValidateCore(JsonElement answer)
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
