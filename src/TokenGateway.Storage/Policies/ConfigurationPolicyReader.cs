using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Configuration;
using TokenGateway.Core.Budgets;

namespace TokenGateway.Storage.Policies;

/// <summary>
/// Reads <see cref="ConfiguredPolicies"/> from the <c>Policies</c> configuration section (<c>Default</c>,
/// <c>Teams:{teamId}</c>, <c>Keys:{keyId}</c>), with the same validation as the admin API.
/// </summary>
internal static class ConfigurationPolicyReader
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "Policies";

    /// <summary>Reads the section; <paramref name="errors"/> lists problems as <c>Policies:Teams:t1 budget.usd: …</c>.</summary>
    public static ConfiguredPolicies Read(IConfiguration configuration, out IReadOnlyList<PolicyError> errors)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var section = configuration.GetSection(SectionName);
        var problems = new List<PolicyError>();
        var defaultSection = section.GetSection("Default");
        var result = new ConfiguredPolicies
        {
            Default = defaultSection.Exists() ? ReadOne(defaultSection, problems) : null,
            Teams = ReadMany(section.GetSection("Teams"), problems),
            Keys = ReadMany(section.GetSection("Keys"), problems),
        };
        errors = problems;
        return result;
    }

    /// <summary>Reads the section and throws when any configured policy is invalid (bad config fails at startup).</summary>
    public static ConfiguredPolicies ReadOrThrow(IConfiguration configuration)
    {
        var policies = Read(configuration, out var errors);
        if (errors.Count > 0)
        {
            throw new InvalidOperationException("Invalid policy configuration: " + string.Join("; ", errors.Select(e => $"{e.Field}: {e.Message}")));
        }

        return policies;
    }

    private static Dictionary<string, TeamPolicy> ReadMany(IConfigurationSection section, List<PolicyError> problems)
    {
        var result = new Dictionary<string, TeamPolicy>(StringComparer.Ordinal);
        foreach (var child in section.GetChildren())
        {
            if (ReadOne(child, problems) is { } policy)
            {
                result[child.Key] = policy;
            }
        }

        return result;
    }

    private static TeamPolicy? ReadOne(IConfigurationSection section, List<PolicyError> problems)
    {
        var node = ToNode(section, stringsOnly: false, isRoot: true) as JsonObject ?? [];
        var parsed = PolicyJson.Parse(node);
        foreach (var error in parsed.Errors)
        {
            problems.Add(new PolicyError($"{section.Path} {error.Field}", error.Message));
        }

        return parsed.Policy;
    }

    private static JsonNode? ToNode(IConfigurationSection section, bool stringsOnly, bool isRoot)
    {
        var children = section.GetChildren().ToList();
        if (children.Count == 0)
        {
            return section.Value is { } value ? Leaf(value, stringsOnly) : null;
        }

        if (children.All(c => int.TryParse(c.Key, NumberStyles.None, CultureInfo.InvariantCulture, out _)))
        {
            var array = new JsonArray();
            foreach (var child in children.OrderBy(c => int.Parse(c.Key, CultureInfo.InvariantCulture)))
            {
                array.Add(ToNode(child, stringsOnly, isRoot: false));
            }

            return array;
        }

        var obj = new JsonObject();
        foreach (var child in children)
        {
            // Model patterns are names: never reinterpret "4" or "true" as a number or boolean there.
            var name = ToCamelCase(child.Key);
            obj[name] = ToNode(child, stringsOnly || (isRoot && name == "models"), isRoot: false);
        }

        return obj;
    }

    private static JsonNode? Leaf(string value, bool stringsOnly)
    {
        if (stringsOnly)
        {
            return JsonValue.Create(value);
        }

        if (value.Length == 0 || value.Equals("null", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        if (bool.TryParse(value, out var flag))
        {
            return JsonValue.Create(flag);
        }

        if (decimal.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var number))
        {
            return JsonValue.Create(number);
        }

        return JsonValue.Create(value);
    }

    // Configuration keys are case-insensitive; policy JSON names are camelCase.
    private static string ToCamelCase(string key) =>
        key.Length > 0 && char.IsUpper(key[0]) ? string.Create(key.Length, key, static (span, k) =>
        {
            k.AsSpan().CopyTo(span);
            span[0] = char.ToLowerInvariant(span[0]);
        }) : key;
}
