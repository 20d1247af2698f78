using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Models;
using TokenGateway.Core.Optimization;
using TokenGateway.Core.Tokenization;

namespace TokenGateway.Cli;

/// <summary>
/// <c>savings</c>: runs the optimization pipeline offline over a JSONL file of recorded request bodies and reports
/// what TokenGateway would have saved, per request and per stage.
/// </summary>
internal static class SavingsCommand
{
    public const string UsageText =
        "usage: tokengateway savings --input requests.jsonl --report report.json [--emit rewritten.jsonl] [--policy policy.json] [--model gpt-4o]";

    private static readonly JsonSerializerOptions _reportOptions = new() { WriteIndented = true };

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (!TryParseArgs(args, out var options, out var argError))
        {
            stderr.WriteLine(argError);
            stderr.WriteLine(UsageText);
            return 2;
        }

        OptimizationPolicy policy;
        OutputLimits limits;
        try
        {
            (policy, limits) = LoadPolicy(options.PolicyPath, stderr);
        }
        catch (Exception ex) when (ex is IOException or JsonException or InvalidDataException)
        {
            stderr.WriteLine($"Cannot read the policy: {ex.Message}");
            return 2;
        }

        var catalog = ModelCatalogLoader.Load(stderr);
        var tokenizers = TiktokenTokenizerRegistry.Shared;
        var counter = new ChatRequestTokenCounter(tokenizers);
        var pipeline = new OptimizationPipeline(tokenizers, counter);
        var costs = new ConversationCostModel(counter, new CostCalculator(new PricingOptions()));
        var money = new CostTotals();
        var entries = new JsonArray();
        var stageTotals = new Dictionary<string, long>(StringComparer.Ordinal);
        var stageOrder = new List<string>();
        long received = 0, sent = 0;
        var requests = 0;
        var failures = 0;

        using var emit = options.EmitPath is null ? null : new StreamWriter(options.EmitPath, false, new UTF8Encoding(false));
        var lineNumber = 0;
        foreach (var line in File.ReadLines(options.InputPath))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            requests++;
            LlmRequest? request = null;
            var ok = TryReadLine(line, out var endpoint, out var dialect, out var bodyText, out var error);
            if (ok && !LlmRequestParser.TryParse(dialect, Encoding.UTF8.GetBytes(bodyText), out request, out var parseError))
            {
                ok = false;
                error = parseError.Message;
            }

            if (!ok)
            {
                failures++;
                entries.Add(new JsonObject { ["line"] = lineNumber, ["error"] = error });
                emit?.WriteLine(bodyText);
                continue;
            }

            var card = catalog.Resolve(options.Model ?? request!.Model, dialect);
            var original = (JsonObject)request!.Body.DeepClone(); // the stages rewrite Body in place
            var result = pipeline.Run(request!, card, policy, limits);
            var cost = costs.Add(dialect, original, request.Body, card, result.TokensReceived, result.TokensSent);
            money.Add(cost, options.Model ?? request.Model);
            received += result.TokensReceived;
            sent += result.TokensSent;
            foreach (var stage in result.Stages)
            {
                if (!stageTotals.ContainsKey(stage.Name))
                {
                    stageOrder.Add(stage.Name);
                    stageTotals[stage.Name] = 0;
                }

                stageTotals[stage.Name] += stage.TokensSaved;
            }

            entries.Add(new JsonObject
            {
                ["line"] = lineNumber,
                ["endpoint"] = endpoint,
                ["model"] = card.Name,
                ["tokensReceived"] = result.TokensReceived,
                ["tokensSent"] = result.TokensSent,
                ["modified"] = request!.IsModified,
                ["stages"] = StagesJson(result.Stages),
                ["cost"] = CostJson(cost, options.Model ?? request.Model),
                ["cache"] = CacheJson(cost),
            });
            emit?.WriteLine(Encoding.UTF8.GetString(request.GetBytesToSend().Span));
        }

        var totals = new JsonObject
        {
            ["requests"] = requests,
            ["failed"] = failures,
            ["tokensReceived"] = received,
            ["tokensSent"] = sent,
            ["tokensSaved"] = received - sent,
            ["percentSaved"] = received == 0 ? 0 : Math.Round(100.0 * (received - sent) / received, 2),
            ["stages"] = new JsonArray(stageOrder.Select(s => (JsonNode)new JsonObject { ["name"] = s, ["tokensSaved"] = stageTotals[s] }).ToArray()),
            ["cost"] = money.CostJson(),
            ["cache"] = money.CacheJson(),
        };
        File.WriteAllText(options.ReportPath, new JsonObject { ["totals"] = totals, ["requests"] = entries }.ToJsonString(_reportOptions));
        PrintTable(stdout, requests, failures, received, sent, stageOrder, stageTotals);
        money.Print(stdout);
        return failures == 0 ? 0 : 1;
    }

    /// <summary>Input dollars at catalogue prices; an unpriced model says so and gets no figures.</summary>
    internal static JsonObject CostJson(RequestCostEstimate cost, string requestedModel)
    {
        if (!cost.Priced)
        {
            return new JsonObject { ["priced"] = false, ["note"] = $"no catalogue price for '{requestedModel}'" };
        }

        return new JsonObject
        {
            ["priced"] = true,
            ["beforeUsd"] = cost.BeforeUsd,
            ["afterUsd"] = cost.AfterUsd,
            ["beforeCachedUsd"] = cost.BeforeCachedUsd,
            ["afterCachedUsd"] = cost.AfterCachedUsd,
        };
    }

    /// <summary>The provider prompt cache along the conversation, for the request as sent by the client and as optimized.</summary>
    internal static JsonObject CacheJson(RequestCostEstimate cost) => new()
    {
        ["conversation"] = cost.Conversation,
        ["turn"] = cost.Turn,
        ["before"] = CacheUseJson(cost.CacheBefore),
        ["after"] = CacheUseJson(cost.CacheAfter),
        ["prefixBrokenAt"] = cost.PrefixBrokenAt,
    };

    private static JsonObject CacheUseJson(PromptCacheUse use) => new()
    {
        ["sharedPrefixTokens"] = use.SharedPrefixTokens,
        ["readTokens"] = use.ReadTokens,
        ["writeTokens"] = use.WriteTokens,
    };

    private static JsonArray StagesJson(IReadOnlyList<StageSaving> stages) =>
        new(stages.Select(s => (JsonNode)new JsonObject { ["name"] = s.Name, ["tokensSaved"] = s.TokensSaved }).ToArray());

    private static void PrintTable(TextWriter stdout, int requests, int failures, long received, long sent, List<string> order, Dictionary<string, long> totals)
    {
        var c = CultureInfo.InvariantCulture;
        stdout.WriteLine(string.Create(c, $"{requests} requests ({failures} failed), {received:N0} tokens received, {sent:N0} sent"));
        stdout.WriteLine();
        stdout.WriteLine(string.Create(c, $"{"stage",-14}{"tokens saved",14}{"% of received",16}"));
        foreach (var stage in order)
        {
            stdout.WriteLine(string.Create(c, $"{stage,-14}{totals[stage],14:N0}{Percent(totals[stage], received),16}"));
        }

        stdout.WriteLine(string.Create(c, $"{"total",-14}{received - sent,14:N0}{Percent(received - sent, received),16}"));
    }

    private static string Percent(long part, long whole) =>
        whole == 0 ? "0.0%" : (100.0 * part / whole).ToString("F1", CultureInfo.InvariantCulture) + "%";

    private static bool TryReadLine(string line, out string endpoint, out LlmDialect dialect, out string body, out string? error)
    {
        endpoint = "/v1/chat/completions";
        dialect = LlmDialect.OpenAIChat;
        body = line;
        error = null;
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(line);
        }
        catch (JsonException ex)
        {
            error = $"Not valid JSON: {ex.Message}";
            return false;
        }

        if (node is JsonObject o && o["endpoint"] is JsonValue e && e.TryGetValue<string>(out var path) && o["body"] is JsonObject wrapped)
        {
            if (!LlmDialects.TryFromPath(path, out dialect))
            {
                error = $"Unknown endpoint '{path}'.";
                return false;
            }

            endpoint = path;
            body = wrapped.ToJsonString(LlmRequestParser.WriteOptions);
        }

        return true;
    }

    private static (OptimizationPolicy Policy, OutputLimits Limits) LoadPolicy(string? path, TextWriter stderr)
    {
        if (path is null)
        {
            return (OptimizationPolicy.Default, default);
        }

        var root = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidDataException("The policy must be a JSON object.");

        // Accept a whole team policy ({"optimization": …, "maxTokens": …}) or just its optimization section.
        var section = root["optimization"] as JsonObject ?? (root.ContainsKey("maxTokens") ? null : root);
        var policy = OptimizationPolicy.FromJson(section, out var errors);
        foreach (var error in errors)
        {
            stderr.WriteLine($"policy: {error}");
        }

        if (errors.Count > 0)
        {
            throw new InvalidDataException($"{errors.Count} policy error(s).");
        }

        var maxTokens = root["maxTokens"] as JsonObject;
        return (policy, new OutputLimits(ReadInt(maxTokens?["default"]), ReadInt(maxTokens?["cap"]), 0));
    }

    private static int? ReadInt(JsonNode? node) => node is JsonValue v && v.TryGetValue<int>(out var i) ? i : null;

    private sealed record Options(string InputPath, string ReportPath, string? EmitPath, string? PolicyPath, string? Model);

    private static bool TryParseArgs(string[] args, out Options options, out string error)
    {
        options = null!;
        error = string.Empty;
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] is not ("--input" or "--report" or "--emit" or "--policy" or "--model") || i + 1 >= args.Length)
            {
                error = $"Unexpected argument '{args[i]}'.";
                return false;
            }

            values[args[i]] = args[++i];
        }

        if (!values.TryGetValue("--input", out var input) || !values.TryGetValue("--report", out var report))
        {
            error = "--input and --report are required.";
            return false;
        }

        if (!File.Exists(input))
        {
            error = $"Input file '{input}' does not exist.";
            return false;
        }

        options = new Options(input, report, values.GetValueOrDefault("--emit"), values.GetValueOrDefault("--policy"), values.GetValueOrDefault("--model"));
        return true;
    }
}

/// <summary>Sums of the per-request cost estimates for the report's totals and the printed table.</summary>
internal sealed class CostTotals
{
    private readonly SortedSet<string> _unpricedModels = new(StringComparer.Ordinal);
    private readonly HashSet<int> _conversations = [];
    private int _priced;
    private int _unpriced;
    private decimal _before, _after, _beforeCached, _afterCached;
    private long _readBefore, _readAfter, _writeBefore, _writeAfter;
    private int _broken;

    public void Add(RequestCostEstimate cost, string requestedModel)
    {
        _conversations.Add(cost.Conversation);
        _readBefore += cost.CacheBefore.ReadTokens;
        _readAfter += cost.CacheAfter.ReadTokens;
        _writeBefore += cost.CacheBefore.WriteTokens;
        _writeAfter += cost.CacheAfter.WriteTokens;
        _broken += cost.PrefixBrokenAt is null ? 0 : 1;
        if (!cost.Priced)
        {
            _unpriced++;
            _unpricedModels.Add(requestedModel);
            return;
        }

        _priced++;
        _before += cost.BeforeUsd!.Value;
        _after += cost.AfterUsd!.Value;
        _beforeCached += cost.BeforeCachedUsd!.Value;
        _afterCached += cost.AfterCachedUsd!.Value;
    }

    public JsonObject CostJson() => new()
    {
        ["currency"] = "USD",
        ["scope"] = "input",
        ["pricedRequests"] = _priced,
        ["unpricedRequests"] = _unpriced,
        ["unpricedModels"] = new JsonArray([.. _unpricedModels.Select(m => (JsonNode)m)]),
        ["beforeUsd"] = _before,
        ["afterUsd"] = _after,
        ["beforeCachedUsd"] = _beforeCached,
        ["afterCachedUsd"] = _afterCached,
        ["savedUsd"] = _before - _after,
        ["savedCachedUsd"] = _beforeCached - _afterCached,
    };

    public JsonObject CacheJson() => new()
    {
        ["conversations"] = _conversations.Count,
        ["readTokensBefore"] = _readBefore,
        ["readTokensAfter"] = _readAfter,
        ["writeTokensBefore"] = _writeBefore,
        ["writeTokensAfter"] = _writeAfter,
        ["prefixBroken"] = _broken,
    };

    public void Print(TextWriter stdout)
    {
        var c = CultureInfo.InvariantCulture;
        stdout.WriteLine();
        stdout.WriteLine(string.Create(c, $"input cost at catalogue prices ({_priced} priced requests in {_conversations.Count} conversations)"));
        stdout.WriteLine(string.Create(c, $"{"",-26}{"before",14}{"after",14}{"saved",10}"));
        stdout.WriteLine(string.Create(c, $"{"no prompt cache",-26}{Usd(_before),14}{Usd(_after),14}{Percent(_before - _after, _before),10}"));
        stdout.WriteLine(string.Create(c, $"{"with provider prompt cache",-26}{Usd(_beforeCached),14}{Usd(_afterCached),14}{Percent(_beforeCached - _afterCached, _beforeCached),10}"));
        stdout.WriteLine(string.Create(c, $"cache reads {_readBefore:N0} → {_readAfter:N0} tokens, writes {_writeBefore:N0} → {_writeAfter:N0}; optimization broke the prefix of {_broken} request(s)"));
        if (_unpriced > 0)
        {
            stdout.WriteLine(string.Create(c, $"{_unpriced} request(s) not priced (no catalogue price): {string.Join(", ", _unpricedModels)}"));
        }
    }

    private static string Usd(decimal value) => "$" + value.ToString("N4", CultureInfo.InvariantCulture);

    private static string Percent(decimal part, decimal whole) =>
        whole == 0 ? "-" : (100m * part / whole).ToString("F1", CultureInfo.InvariantCulture) + "%";
}
