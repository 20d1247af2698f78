using System.Text.Json.Nodes;

namespace TokenGateway.Core.StructuredOutput;

/// <summary>What happens when an answer is still invalid after every repair.</summary>
public enum SchemaFailureMode
{
    /// <summary>502 <c>schema_validation_failed</c> with the validation errors.</summary>
    Error,
    /// <summary>The answer is passed through with <c>x-tokengateway-schema-invalid: true</c>.</summary>
    Passthrough,
}

/// <summary>How a streamed request with a schema is enforced.</summary>
public enum SchemaStreamingMode
{
    /// <summary>Stream as usual, validate the collected answer at the end and end with an error event when invalid.</summary>
    ValidateAtEnd,
    /// <summary>Call upstream without streaming, validate/repair, then replay the answer as a well-formed SSE stream.</summary>
    Buffer,
}

/// <summary>
/// The <c>structuredOutput</c> section of a team policy: repairs, failure handling, streaming mode, an optional
/// registered schema applied to every request, and whether to derive a <c>max_tokens</c> ceiling from the schema.
/// </summary>
public sealed record StructuredOutputPolicy
{
    /// <summary>Upper bound for <see cref="MaxRepairs"/>: each repair resends the whole prompt.</summary>
    public const int MaxRepairsLimit = 5;

    /// <summary>Defaults: enabled, one repair, error on failure, validate streams at the end, no policy schema.</summary>
    public static StructuredOutputPolicy Default { get; } = new();

    /// <summary>False turns enforcement off (schemas still pass to the provider untouched).</summary>
    public bool Enabled { get; init; } = true;

    /// <summary>Repair calls after the first answer (0 = local repairs only).</summary>
    public int MaxRepairs { get; init; } = 1;

    /// <summary>What to do with an answer that is still invalid.</summary>
    public SchemaFailureMode OnFailure { get; init; } = SchemaFailureMode.Error;

    /// <summary>How streamed requests are enforced.</summary>
    public SchemaStreamingMode Streaming { get; init; } = SchemaStreamingMode.ValidateAtEnd;

    /// <summary>A registered schema name applied when the request carries no schema of its own.</summary>
    public string? Schema { get; init; }

    /// <summary>Pins <see cref="Schema"/> to one version (null = latest).</summary>
    public int? SchemaVersion { get; init; }

    /// <summary>When true, a schema that bounds its output size lowers <c>max_tokens</c> to that bound.</summary>
    public bool DeriveMaxTokens { get; init; }

    /// <summary>Parses the raw policy section; unknown fields and bad values are reported in <paramref name="errors"/> and ignored.</summary>
    public static StructuredOutputPolicy FromJson(JsonObject? section, out IReadOnlyList<string> errors)
    {
        var problems = new List<string>();
        errors = problems;
        if (section is null)
        {
            return Default;
        }

        var policy = Default;
        foreach (var (name, value) in section)
        {
            switch (name)
            {
                case "enabled":
                    if (value is JsonValue e && e.TryGetValue<bool>(out var enabled))
                    {
                        policy = policy with { Enabled = enabled };
                    }
                    else
                    {
                        problems.Add("enabled: expected true or false.");
                    }

                    break;
                case "maxRepairs":
                    if (value is JsonValue r && r.TryGetValue<int>(out var repairs) && repairs is >= 0 and <= MaxRepairsLimit)
                    {
                        policy = policy with { MaxRepairs = repairs };
                    }
                    else
                    {
                        problems.Add($"maxRepairs: expected an integer between 0 and {MaxRepairsLimit}.");
                    }

                    break;
                case "onFailure":
                    switch (SchemaDiscovery.Str(value))
                    {
                        case "error": policy = policy with { OnFailure = SchemaFailureMode.Error }; break;
                        case "passthrough": policy = policy with { OnFailure = SchemaFailureMode.Passthrough }; break;
                        default: problems.Add("onFailure: expected \"error\" or \"passthrough\"."); break;
                    }

                    break;
                case "streaming":
                    switch (SchemaDiscovery.Str(value))
                    {
                        case "validateAtEnd": policy = policy with { Streaming = SchemaStreamingMode.ValidateAtEnd }; break;
                        case "buffer": policy = policy with { Streaming = SchemaStreamingMode.Buffer }; break;
                        default: problems.Add("streaming: expected \"validateAtEnd\" or \"buffer\"."); break;
                    }

                    break;
                case "schema":
                    if (value is null)
                    {
                        policy = policy with { Schema = null };
                    }
                    else if (SchemaDiscovery.Str(value) is { Length: > 0 } schema && SchemaName.IsValid(schema))
                    {
                        policy = policy with { Schema = schema };
                    }
                    else
                    {
                        problems.Add("schema: expected a registered schema name (letters, digits, '.', '_', '-').");
                    }

                    break;
                case "schemaVersion":
                    if (value is null)
                    {
                        policy = policy with { SchemaVersion = null };
                    }
                    else if (value is JsonValue v && v.TryGetValue<int>(out var version) && version >= 1)
                    {
                        policy = policy with { SchemaVersion = version };
                    }
                    else
                    {
                        problems.Add("schemaVersion: expected a positive integer or null.");
                    }

                    break;
                case "deriveMaxTokens":
                    if (value is JsonValue d && d.TryGetValue<bool>(out var derive))
                    {
                        policy = policy with { DeriveMaxTokens = derive };
                    }
                    else
                    {
                        problems.Add("deriveMaxTokens: expected true or false.");
                    }

                    break;
                default:
                    problems.Add($"{name}: unknown field (allowed: enabled, maxRepairs, onFailure, streaming, schema, schemaVersion, deriveMaxTokens).");
                    break;
            }
        }

        return policy;
    }
}

/// <summary>Rules for registered schema names and the <c>name</c> / <c>name@version</c> references to them.</summary>
public static class SchemaName
{
    /// <summary>Longest accepted name.</summary>
    public const int MaxLength = 64;

    /// <summary>True for 1-64 characters of letters, digits, '.', '_' and '-'.</summary>
    public static bool IsValid(string? name) =>
        !string.IsNullOrEmpty(name) && name.Length <= MaxLength && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-');

    /// <summary>Parses <c>name</c> or <c>name@version</c>.</summary>
    public static bool TryParseReference(string? reference, out string name, out int? version)
    {
        name = "";
        version = null;
        if (string.IsNullOrWhiteSpace(reference))
        {
            return false;
        }

        var text = reference.Trim();
        var at = text.LastIndexOf('@');
        if (at >= 0)
        {
            if (!int.TryParse(text.AsSpan(at + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var v) || v < 1)
            {
                return false;
            }

            version = v;
            text = text[..at];
        }

        name = text;
        return IsValid(text);
    }
}
