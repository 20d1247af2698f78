using System.Globalization;

namespace TokenGateway.Simulator.Faults;

/// <summary>How the <c>invalid-json</c> fault breaks structured answers.</summary>
internal enum InvalidJsonMode
{
    /// <summary>Answers satisfy the schema.</summary>
    Off,
    /// <summary>Invalid unless the conversation already holds an assistant turn (the gateway's repair call).</summary>
    FirstAnswer,
    /// <summary>Every structured answer breaks the schema.</summary>
    Always,
}

/// <summary>The misbehaviour a request asked for through the <c>x-simulator-fault</c> header.</summary>
/// <remarks>
/// Fault delays (latency, stall, the reset grace) run on the wall clock, not the injected <see cref="TimeProvider"/>: they
/// simulate the network, and a host under a fake clock must still see them end.
/// </remarks>
internal sealed record FaultPlan
{
    /// <summary>The request header that carries the faults.</summary>
    public const string HeaderName = "x-simulator-fault";

    /// <summary>Maximum accepted <c>latency</c>, so a typo cannot park a request for hours.</summary>
    public static readonly TimeSpan MaxLatency = TimeSpan.FromMinutes(10);

    public static readonly FaultPlan None = new();

    public TimeSpan Latency { get; init; }
    public int? Status { get; init; }
    public bool Reset { get; init; }
    public bool Stall { get; init; }
    public bool MalformedSse { get; init; }
    public bool NoUsage { get; init; }
    public int? OutputTokens { get; init; }
    public InvalidJsonMode InvalidJson { get; init; }
    public bool FencedJson { get; init; }

    /// <summary>Scenario id (<c>scenario=ID</c>): requests with the same id share a counter for <see cref="First"/>.</summary>
    public string? Scenario { get; init; }

    /// <summary>With <see cref="Scenario"/>: the faults fire only on the first N requests of that scenario (<c>first=N</c>).</summary>
    public int? First { get; init; }

    /// <summary>The faults fire only for this model (<c>model=NAME</c>, case-insensitive).</summary>
    public string? Model { get; init; }

    /// <summary>A stream is cut (connection reset) after this many events (<c>reset-after=N</c>).</summary>
    public int? ResetAfter { get; init; }

    /// <summary>A stream stops sending (keeping the connection open) after this many events (<c>stall-after=N</c>).</summary>
    public int? StallAfter { get; init; }

    /// <summary>True when the plan scopes its faults (scenario, first, model) and so must be resolved per request.</summary>
    public bool IsScoped => Scenario is not null || Model is not null;

    /// <summary>The plan with every fault removed (what a request out of scope gets).</summary>
    public static FaultPlan Inert => None;

    /// <summary>With <see cref="Status"/>: the error is an HTML page (as a load balancer or CDN in front of a provider sends).</summary>
    public bool HtmlError { get; init; }

    /// <summary>Every answer carries the headers a real provider adds (cookies, organisation, rate-limit state).</summary>
    public bool ProviderHeaders { get; init; }

    /// <summary>Parses a comma-separated fault list; false with a client-facing message for unknown faults or bad values.</summary>
    public static bool TryParse(string? header, out FaultPlan plan, out string? error)
    {
        plan = None;
        error = null;
        if (string.IsNullOrWhiteSpace(header))
        {
            return true;
        }

        var result = new FaultPlan();
        foreach (var raw in header.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = raw.IndexOf('=', StringComparison.Ordinal);
            var name = (eq < 0 ? raw : raw[..eq]).Trim().ToLowerInvariant();
            var value = eq < 0 ? null : raw[(eq + 1)..].Trim();
            switch (name)
            {
                case "latency" when TryParseDuration(value, out var latency):
                    result = result with { Latency = latency };
                    break;
                case "status" when int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var status) && status is >= 400 and <= 599:
                    result = result with { Status = status };
                    break;
                case "output-tokens" when int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var tokens) && tokens is >= 0 and <= 1_000_000:
                    result = result with { OutputTokens = tokens };
                    break;
                case "reset" when value is null:
                    result = result with { Reset = true };
                    break;
                case "stall" when value is null:
                    result = result with { Stall = true };
                    break;
                case "malformed-sse" when value is null:
                    result = result with { MalformedSse = true };
                    break;
                case "no-usage" when value is null:
                    result = result with { NoUsage = true };
                    break;
                case "fenced-json" when value is null:
                    result = result with { FencedJson = true };
                    break;
                case "html-error" when value is null:
                    result = result with { HtmlError = true };
                    break;
                case "provider-headers" when value is null:
                    result = result with { ProviderHeaders = true };
                    break;
                case "invalid-json" when value is null || value.Equals("first", StringComparison.OrdinalIgnoreCase):
                    result = result with { InvalidJson = InvalidJsonMode.FirstAnswer };
                    break;
                case "invalid-json" when value.Equals("always", StringComparison.OrdinalIgnoreCase):
                    result = result with { InvalidJson = InvalidJsonMode.Always };
                    break;
                case "scenario" when value is { Length: > 0 and <= 128 }:
                    result = result with { Scenario = value };
                    break;
                case "first" when int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var first) && first is >= 0 and <= 1_000_000:
                    result = result with { First = first };
                    break;
                case "model" when value is { Length: > 0 and <= 256 }:
                    result = result with { Model = value };
                    break;
                case "reset-after" when int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var events) && events is >= 1 and <= 1_000_000:
                    result = result with { ResetAfter = events };
                    break;
                case "stall-after" when int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var stallEvents) && stallEvents is >= 1 and <= 1_000_000:
                    result = result with { StallAfter = stallEvents };
                    break;
                default:
                    error = $"Unknown or malformed simulator fault '{raw}' in the {HeaderName} header. Known faults: latency=<n>ms|<n>s, status=<400-599>, " +
                        "reset, stall, malformed-sse, no-usage, output-tokens=<n>, invalid-json[=always], fenced-json, html-error, provider-headers, reset-after=<n>, stall-after=<n>; " +
                        "scoping: scenario=<id>, first=<n> (with scenario), model=<name>.";
                    return false;
            }
        }

        if (result.First is not null && result.Scenario is null)
        {
            error = $"The simulator fault 'first=N' needs a 'scenario=ID' in the same {HeaderName} header.";
            return false;
        }

        plan = result;
        return true;
    }

    private static bool TryParseDuration(string? value, out TimeSpan duration)
    {
        duration = default;
        if (string.IsNullOrEmpty(value))
        {
            return false;
        }

        double scale = 1;
        var number = value.AsSpan();
        if (number.EndsWith("ms", StringComparison.OrdinalIgnoreCase))
        {
            number = number[..^2];
        }
        else if (number.EndsWith('s'))
        {
            number = number[..^1];
            scale = 1000;
        }

        if (!double.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var ms))
        {
            return false;
        }

        duration = TimeSpan.FromMilliseconds(ms * scale);
        return duration <= MaxLatency;
    }
}
