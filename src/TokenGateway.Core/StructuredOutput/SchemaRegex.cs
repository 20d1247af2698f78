using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using Json.Schema;
using Json.Schema.Keywords;

namespace TokenGateway.Core.StructuredOutput;

/// <summary>
/// Time limits for the regular expressions a client's JSON schema brings (<c>pattern</c>, <c>patternProperties</c>):
/// JsonSchema.Net 8 compiles them without a match timeout, so a catastrophic pattern such as <c>^(a+)+$</c> against
/// <c>"aaaa…!"</c> would pin a core for minutes. Every schema compiled by <see cref="CompiledSchema"/> is built with
/// <see cref="Registry"/>, whose dialects swap those two keywords for timed versions.
/// </summary>
/// <remarks>
/// Two bounds: each match has <see cref="MatchTimeout"/> (the <see cref="Regex"/> constructor's timeout), and one
/// validation may spend at most <see cref="ValidationBudget"/> in total before the next regex keyword gives up — so an
/// answer with a thousand strings cannot multiply the per-match bound. Either way the regex throws
/// <see cref="RegexMatchTimeoutException"/>, which <see cref="CompiledSchema.Validate(JsonElement)"/> turns into an
/// invalid answer with a clear error (never an exception to the caller).
/// </remarks>
internal static class SchemaRegex
{
    /// <summary>Longest a single <c>pattern</c>/<c>patternProperties</c> match may run.</summary>
    public static readonly TimeSpan MatchTimeout = TimeSpan.FromMilliseconds(100);

    /// <summary>Longest all regex keywords of one validation may run together (checked before each one starts).</summary>
    public static readonly TimeSpan ValidationBudget = TimeSpan.FromMilliseconds(500);

    [ThreadStatic]
    private static long t_deadline; // Stopwatch timestamp; 0 = no validation in progress on this thread

    /// <summary>
    /// Safe versions of every dialect JsonSchema.Net knows (draft-06 to v1), under their official ids, so a client's
    /// <c>$schema</c> cannot select one with untimed regexes.
    /// </summary>
    public static DialectRegistry Registry { get; } = CreateRegistry();

    /// <summary>The dialect for schemas without <c>$schema</c> (JsonSchema.Net's default, made safe).</summary>
    public static Dialect DefaultDialect { get; } = MakeSafe(Dialect.V1, MetaSchemas.V1_2026Id);

    /// <summary>Starts the total budget for one validation on this thread; dispose to end it.</summary>
    public static Scope BeginValidation()
    {
        var previous = t_deadline;
        if (previous == 0)
        {
            t_deadline = Stopwatch.GetTimestamp() + (long)(ValidationBudget.TotalSeconds * Stopwatch.Frequency);
        }

        return new Scope(previous);
    }

    /// <summary>True when every regex keyword in the built schema is one of the timed ones.</summary>
    public static bool AllTimed(JsonSchema schema)
    {
        var seen = new HashSet<JsonSchemaNode>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<JsonSchemaNode>();
        stack.Push(schema.Root);
        while (stack.TryPop(out var node))
        {
            if (!seen.Add(node))
            {
                continue;
            }

            foreach (var keyword in node.Keywords)
            {
                var type = keyword.Handler.GetType();
                if (type == typeof(PatternKeyword) || type == typeof(PatternPropertiesKeyword))
                {
                    return false;
                }

                foreach (var sub in keyword.Subschemas ?? [])
                {
                    stack.Push(sub);
                }
            }
        }

        return true;
    }

    internal static void ThrowIfOverBudget(Regex regex)
    {
        var deadline = t_deadline;
        if (deadline != 0 && Stopwatch.GetTimestamp() > deadline)
        {
            throw new RegexMatchTimeoutException("", regex.ToString(), ValidationBudget);
        }
    }

    internal static Regex Create(string pattern) => new(pattern, RegexOptions.ECMAScript, MatchTimeout);

    private static DialectRegistry CreateRegistry()
    {
        // A private registry (not Global): it may hold dialects under the official ids, and nothing else sees them.
        var registry = new DialectRegistry();
        (Dialect Dialect, Uri Id)[] official =
        [
            (Dialect.Draft06, MetaSchemas.Draft6Id), (Dialect.Draft07, MetaSchemas.Draft7Id),
            (Dialect.Draft201909, MetaSchemas.Draft201909Id), (Dialect.Draft202012, MetaSchemas.Draft202012Id),
            (Dialect.V1_2026, MetaSchemas.V1_2026Id), (Dialect.V1, MetaSchemas.V1Id),
        ];
        foreach (var (dialect, id) in official)
        {
            registry.Register(MakeSafe(dialect, id));
        }

        return registry;
    }

    private static Dialect MakeSafe(Dialect dialect, Uri id)
    {
        // The library's own keyword instances stay registered beside the timed ones: other keywords declare their
        // evaluation order by type (additionalProperties after patternProperties), and the name lookup resolves to
        // whichever was added last — the timed one.
        return dialect.With([TimedPatternKeyword.Instance, TimedPatternPropertiesKeyword.Instance], id);
    }

    /// <summary>Ends a validation's budget (only the outermost scope clears it).</summary>
    public readonly struct Scope(long previous) : IDisposable
    {
        public void Dispose()
        {
            if (previous == 0)
            {
                t_deadline = 0;
            }
        }
    }
}

/// <summary><c>pattern</c> with a match timeout and the validation budget.</summary>
internal sealed class TimedPatternKeyword : PatternKeyword
{
    public static new TimedPatternKeyword Instance { get; } = new();

    public override object? ValidateKeywordValue(JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.String)
        {
            throw new JsonSchemaException($"'pattern' value must be a string, found {value.ValueKind}");
        }

        return SchemaRegex.Create(value.GetString()!);
    }

    public override KeywordEvaluation Evaluate(KeywordData keyword, EvaluationContext context)
    {
        if (context.Instance.ValueKind == JsonValueKind.String)
        {
            SchemaRegex.ThrowIfOverBudget((Regex)keyword.Value!); // set by ValidateKeywordValue
        }

        return base.Evaluate(keyword, context);
    }
}

/// <summary><c>patternProperties</c> with a match timeout and the validation budget.</summary>
internal sealed class TimedPatternPropertiesKeyword : PatternPropertiesKeyword
{
    public static new TimedPatternPropertiesKeyword Instance { get; } = new();

    public override object? ValidateKeywordValue(JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw new JsonSchemaException($"'patternProperties' value must be an object, found {value.ValueKind}");
        }

        // The base evaluation reads this exact shape: property-name pattern → regex.
        var regexes = new Dictionary<string, Regex>(StringComparer.Ordinal);
        foreach (var property in value.EnumerateObject())
        {
            if (property.Value.ValueKind is not (JsonValueKind.Object or JsonValueKind.True or JsonValueKind.False))
            {
                throw new JsonSchemaException("Values must be valid schemas");
            }

            regexes[property.Name] = SchemaRegex.Create(property.Name);
        }

        return regexes;
    }

    public override KeywordEvaluation Evaluate(KeywordData keyword, EvaluationContext context)
    {
        if (context.Instance.ValueKind == JsonValueKind.Object && keyword.Value is Dictionary<string, Regex> { Count: > 0 } regexes)
        {
            SchemaRegex.ThrowIfOverBudget(regexes.Values.First());
        }

        return base.Evaluate(keyword, context);
    }
}
