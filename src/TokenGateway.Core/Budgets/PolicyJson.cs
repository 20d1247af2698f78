using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace TokenGateway.Core.Budgets;

/// <summary>Reads and writes <see cref="TeamPolicy"/> JSON (camelCase, as in DESIGN.md §3) with per-field errors.</summary>
public static class PolicyJson
{
    private static readonly Dictionary<string, string> _expected = new(StringComparer.Ordinal)
    {
        ["budget"] = "an object",
        ["budget.usd"] = "a number (USD) or null",
        ["budget.tokens"] = "an integer or null",
        ["budget.period"] = "one of \"day\", \"week\", \"month\"",
        ["budget.softAlertPercent"] = "an integer between 1 and 100, or null",
        ["budget.hard"] = "true or false",
        ["rateLimits"] = "an object",
        ["rateLimits.requestsPerMinute"] = "an integer or null",
        ["rateLimits.tokensPerMinute"] = "an integer or null",
        ["models"] = "an object",
        ["models.allow"] = "an array of model name patterns",
        ["models.deny"] = "an array of model name patterns",
        ["maxTokens"] = "an object",
        ["maxTokens.default"] = "an integer or null",
        ["maxTokens.cap"] = "an integer or null",
        ["maxTokens.adaptive"] = "true, false or an object {\"enabled\", \"floor\", \"marginPercent\", \"minSamples\"}",
        ["maxTokens.adaptive.enabled"] = "true or false",
        ["maxTokens.adaptive.floor"] = "an integer or null",
        ["maxTokens.adaptive.marginPercent"] = "an integer or null",
        ["maxTokens.adaptive.minSamples"] = "an integer or null",
        ["optimization"] = "an object",
        ["structuredOutput"] = "an object",
        ["resilience"] = "an object",
        ["resilience.timeouts"] = "an object",
        ["resilience.timeouts.connect"] = "a duration such as \"00:00:10\"",
        ["resilience.timeouts.responseHeaders"] = "a duration such as \"00:01:00\"",
        ["resilience.timeouts.idle"] = "a duration such as \"00:02:00\"",
        ["resilience.timeouts.total"] = "a duration such as \"00:10:00\"",
        ["resilience.retry"] = "an object",
        ["resilience.retry.maxAttempts"] = "an integer",
        ["resilience.retry.baseDelay"] = "a duration such as \"00:00:00.5\"",
        ["resilience.retry.maxDelay"] = "a duration such as \"00:00:10\"",
        ["resilience.retry.jitter"] = "a number between 0 and 1",
        ["resilience.retry.retryAfterCap"] = "a duration such as \"00:00:20\"",
        ["resilience.continueStreams"] = "true or false",
        ["fallbacks"] = "an object mapping a model name to an array of model names",
        ["cache"] = "an object",
        ["cache.enabled"] = "true or false",
        ["cache.ttlSeconds"] = "an integer (seconds)",
        ["cache.maxEntryBytes"] = "an integer (bytes)",
        ["cache.requireDeterministic"] = "true or false",
    };

    /// <summary>The serializer options used for policies (camelCase, string enums, nulls omitted, unknown fields refused).</summary>
    public static JsonSerializerOptions Options { get; } = CreateOptions();

    /// <summary>Serializes a policy to JSON text.</summary>
    public static string Serialize(TeamPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        return JsonSerializer.Serialize(policy, Options);
    }

    /// <summary>Serializes a policy to a JSON tree (for admin API responses).</summary>
    public static JsonNode ToNode(TeamPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        return JsonSerializer.SerializeToNode(policy, Options)!; // a non-null record always serializes to an object
    }

    /// <summary>Parses and validates policy JSON text; on failure the errors say which field is wrong and why.</summary>
    public static PolicyParseResult Parse(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        TeamPolicy? policy;
        try
        {
            policy = JsonSerializer.Deserialize<TeamPolicy>(json, Options);
        }
        catch (JsonException ex)
        {
            return PolicyParseResult.Failed(Describe(ex));
        }

        return Validate(policy);
    }

    /// <summary>Parses and validates an already-parsed JSON tree.</summary>
    public static PolicyParseResult Parse(JsonNode? node)
    {
        TeamPolicy? policy;
        try
        {
            policy = node is null ? null : node.Deserialize<TeamPolicy>(Options);
        }
        catch (JsonException ex)
        {
            return PolicyParseResult.Failed(Describe(ex));
        }

        return Validate(policy);
    }

    private static PolicyParseResult Validate(TeamPolicy? policy)
    {
        if (policy is null)
        {
            return PolicyParseResult.Failed([new PolicyError("$", "The policy must be a JSON object.")]);
        }

        var errors = PolicyValidator.Validate(policy);
        return errors.Count == 0 ? PolicyParseResult.Ok(policy) : PolicyParseResult.Failed(errors);
    }

    private static PolicyError[] Describe(JsonException ex)
    {
        var field = ex.Path is null or "$" ? "$" : ex.Path.StartsWith("$.", StringComparison.Ordinal) ? ex.Path[2..] : ex.Path;
        if (ex.Message.Contains("could not be mapped", StringComparison.Ordinal))
        {
            return [new PolicyError(field, "Unknown field. Allowed sections: budget, rateLimits, models, maxTokens, optimization, structuredOutput, resilience, fallbacks, cache.")];
        }

        if (!ex.Message.Contains("could not be converted", StringComparison.Ordinal))
        {
            // A syntax error: report where, without echoing the payload.
            return [new PolicyError("$", $"Malformed JSON near line {(ex.LineNumber ?? 0) + 1}, byte {(ex.BytePositionInLine ?? 0) + 1}: the policy must be a JSON object.")];
        }

        // Array element paths (models.allow[0]) report against the list.
        var bracket = field.IndexOf('[', StringComparison.Ordinal);
        var lookup = bracket > 0 ? field[..bracket] : field;
        if (lookup.StartsWith("fallbacks.", StringComparison.Ordinal))
        {
            lookup = "fallbacks"; // model names are data, not fields
        }

        return _expected.TryGetValue(lookup, out var expected)
            ? [new PolicyError(lookup, $"Invalid value: expected {expected}.")]
            : [new PolicyError(field, "Invalid value: the policy must be a JSON object.")];
    }

    private static JsonSerializerOptions CreateOptions()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web)
        {
            DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
            UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
            NumberHandling = JsonNumberHandling.Strict,
            AllowTrailingCommas = false,
            ReadCommentHandling = JsonCommentHandling.Disallow,
            MaxDepth = 32,
        };
        options.Converters.Add(new JsonStringEnumConverter<BudgetPeriod>(JsonNamingPolicy.CamelCase, allowIntegerValues: false));
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }
}

/// <summary>The outcome of <see cref="PolicyJson.Parse(string)"/>: a valid policy, or the list of problems.</summary>
public sealed record PolicyParseResult(TeamPolicy? Policy, IReadOnlyList<PolicyError> Errors)
{
    /// <summary>True when <see cref="Policy"/> is set and valid.</summary>
    public bool IsValid => Policy is not null && Errors.Count == 0;

    internal static PolicyParseResult Ok(TeamPolicy policy) => new(policy, []);

    internal static PolicyParseResult Failed(IReadOnlyList<PolicyError> errors) => new(null, errors);
}
