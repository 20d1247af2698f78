using System.Collections.Concurrent;
using TokenGateway.Core.Budgets;

namespace TokenGateway.Core.Insights;

/// <summary>
/// Aggregates of the sampled requests, per team and model, in bounded memory: sums for the shadow savings, tool-set
/// and prompt-cache observations, and the last <see cref="AdaptiveOutputCaps.Window"/> answers per model for the output
/// cap. Nothing of a request body is kept. In memory, per process: a restart starts over, and each replica sees only
/// the requests it sampled.
/// </summary>
public sealed class InsightsStore
{
    /// <summary>Models tracked per team (further models are not aggregated).</summary>
    public const int MaxModelsPerTeam = 64;

    /// <summary>Distinct called tool names remembered per team.</summary>
    public const int MaxCalledTools = 512;

    /// <summary>Recent static prefixes remembered per team (the oldest is forgotten first).</summary>
    public const int MaxPrefixes = 256;

    /// <summary>Declared tool counts above this share one histogram bucket.</summary>
    public const int MaxDeclaredBucket = 512;

    /// <summary>How long the provider keeps a prompt-cache entry (Anthropic's default TTL): a prefix seen again within it is a repeat.</summary>
    public static readonly TimeSpan PrefixLifetime = TimeSpan.FromMinutes(5);

    private readonly ConcurrentDictionary<string, TeamAggregate> _teams = new(StringComparer.Ordinal);
    private readonly int _maxTeams;

    /// <summary>Creates a store that tracks at most <paramref name="maxTeams"/> teams (later teams are not sampled).</summary>
    public InsightsStore(int maxTeams = 10_000)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxTeams, 1);
        _maxTeams = maxTeams;
    }

    /// <summary>Teams with observations.</summary>
    public int TeamCount => _teams.Count;

    /// <summary>Adds one sample; false when the team limit is reached and the team is new.</summary>
    public bool Add(InsightSample sample)
    {
        ArgumentNullException.ThrowIfNull(sample);
        if (!_teams.TryGetValue(sample.TeamId, out var team))
        {
            if (_teams.Count >= _maxTeams)
            {
                return false;
            }

            team = _teams.GetOrAdd(sample.TeamId, static _ => new TeamAggregate());
        }

        team.Add(sample);
        return true;
    }

    /// <summary>A consistent copy of <paramref name="teamId"/>'s aggregates; null when nothing was sampled.</summary>
    public TeamObservations? Snapshot(string teamId) => _teams.TryGetValue(teamId, out var team) ? team.Snapshot(teamId) : null;

    /// <summary>Every team's aggregates (what <see cref="Restore"/> takes back after a restart); recent prefixes are not included.</summary>
    public IReadOnlyList<TeamObservations> Export() =>
        [.. _teams.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => kv.Value.Snapshot(kv.Key))];

    /// <summary>
    /// Adds exported aggregates to the store (at start-up, before sampling resumes): sums add up, answers join the
    /// ring, called tools join the set, within the same bounds as live samples.
    /// </summary>
    public void Restore(IEnumerable<TeamObservations> teams)
    {
        ArgumentNullException.ThrowIfNull(teams);
        foreach (var observations in teams)
        {
            if (observations?.TeamId is not { Length: > 0 } teamId || (!_teams.ContainsKey(teamId) && _teams.Count >= _maxTeams))
            {
                continue;
            }

            _teams.GetOrAdd(teamId, static _ => new TeamAggregate()).Restore(observations);
        }
    }

    private sealed class TeamAggregate
    {
        private readonly Lock _lock = new();
        private readonly Dictionary<string, ModelAggregate> _models = new(StringComparer.Ordinal);
        private readonly HashSet<string> _called = new(StringComparer.Ordinal);
        private readonly Dictionary<long, DateTimeOffset> _prefixes = [];

        public void Add(InsightSample s)
        {
            lock (_lock)
            {
                if (!_models.TryGetValue(s.Model, out var m))
                {
                    if (_models.Count >= MaxModelsPerTeam)
                    {
                        return;
                    }

                    _models[s.Model] = m = new ModelAggregate();
                }

                m.Samples++;
                m.CostUsd += s.CostUsd;
                m.InputTokens += s.InputTokens;
                foreach (var saving in s.Savings)
                {
                    var current = m.Savings.GetValueOrDefault(saving.Stage);
                    m.Savings[saving.Stage] = (current.Tokens + saving.Tokens, current.Usd + saving.Usd, current.Requests + (saving.Tokens > 0 ? 1 : 0));
                }

                if (s.DeclaredTools > 0)
                {
                    var bucket = Math.Min(s.DeclaredTools, MaxDeclaredBucket);
                    var current = m.Declared.GetValueOrDefault(bucket);
                    m.Declared[bucket] = (current.Requests + 1, current.Tokens + s.ToolTokens, current.Usd + s.ToolUsd);
                }

                foreach (var name in s.CalledTools)
                {
                    if (_called.Count >= MaxCalledTools)
                    {
                        break;
                    }

                    _called.Add(name);
                }

                if (s.OutputTokens is { } output)
                {
                    m.Answers[m.Next] = new AnswerObservation(output, s.MaxTokens, Math.Max(1, s.Choices), s.CostUsd);
                    m.Next = (m.Next + 1) % AdaptiveOutputCaps.Window;
                    m.AnswerCount = Math.Min(m.AnswerCount + 1, AdaptiveOutputCaps.Window);
                    m.OutputPricePerMillion = s.OutputPricePerMillion;
                }

                if (s.Prefix is { } prefix)
                {
                    AddPrefix(m, prefix, s.At);
                }
            }
        }

        private void AddPrefix(ModelAggregate m, PrefixObservation prefix, DateTimeOffset at)
        {
            var repeat = _prefixes.TryGetValue(prefix.Hash, out var seen) && at - seen <= PrefixLifetime;
            if (!_prefixes.ContainsKey(prefix.Hash) && _prefixes.Count >= MaxPrefixes)
            {
                _prefixes.Remove(_prefixes.MinBy(kv => kv.Value).Key);
            }

            _prefixes[prefix.Hash] = at;
            m.PrefixSamples++;
            m.PrefixTokens += prefix.Tokens;
            if (repeat)
            {
                var missed = Math.Max(0, prefix.Tokens - prefix.CachedReadTokens);
                m.PrefixRepeats++;
                m.PrefixMissedTokens += missed;
                m.PrefixMissedUsd += missed * prefix.ReadSavingPerMillion / 1_000_000m;
            }
            else
            {
                // The first request of a prefix would write the cache entry: that costs extra once per lifetime.
                m.PrefixWrites++;
                m.PrefixWriteUsd += prefix.Tokens * prefix.WritePremiumPerMillion / 1_000_000m;
            }
        }

        public void Restore(TeamObservations o)
        {
            lock (_lock)
            {
                foreach (var name in o.CalledTools ?? [])
                {
                    if (_called.Count >= MaxCalledTools)
                    {
                        break;
                    }

                    _called.Add(name);
                }

                foreach (var r in o.Models ?? [])
                {
                    if (!_models.TryGetValue(r.Model, out var m))
                    {
                        if (_models.Count >= MaxModelsPerTeam)
                        {
                            continue;
                        }

                        _models[r.Model] = m = new ModelAggregate();
                    }

                    m.Samples += r.Samples;
                    m.CostUsd += r.CostUsd;
                    m.InputTokens += r.InputTokens;
                    foreach (var (stage, v) in r.Savings)
                    {
                        var current = m.Savings.GetValueOrDefault(stage);
                        m.Savings[stage] = (current.Tokens + v.Tokens, current.Usd + v.Usd, current.Requests + v.Requests);
                    }

                    foreach (var (declared, v) in r.DeclaredTools)
                    {
                        var bucket = Math.Clamp(declared, 1, MaxDeclaredBucket);
                        var current = m.Declared.GetValueOrDefault(bucket);
                        m.Declared[bucket] = (current.Requests + v.Requests, current.Tokens + v.Tokens, current.Usd + v.Usd);
                    }

                    foreach (var answer in r.Answers.TakeLast(AdaptiveOutputCaps.Window))
                    {
                        m.Answers[m.Next] = answer;
                        m.Next = (m.Next + 1) % AdaptiveOutputCaps.Window;
                        m.AnswerCount = Math.Min(m.AnswerCount + 1, AdaptiveOutputCaps.Window);
                    }

                    m.OutputPricePerMillion = r.OutputPricePerMillion;
                    var c = r.PromptCache;
                    m.PrefixSamples += c.Samples;
                    m.PrefixRepeats += c.Repeats;
                    m.PrefixTokens += c.PrefixTokens;
                    m.PrefixMissedTokens += c.MissedTokens;
                    m.PrefixMissedUsd += c.MissedUsd;
                    m.PrefixWrites += c.Writes;
                    m.PrefixWriteUsd += c.WritePremiumUsd;
                }
            }
        }

        public TeamObservations Snapshot(string teamId)
        {
            lock (_lock)
            {
                var models = _models.Select(kv => new ModelObservations
                {
                    Model = kv.Key,
                    Samples = kv.Value.Samples,
                    CostUsd = kv.Value.CostUsd,
                    InputTokens = kv.Value.InputTokens,
                    Savings = kv.Value.Savings.ToDictionary(s => s.Key, s => new StageObservation(s.Value.Tokens, s.Value.Usd, s.Value.Requests), StringComparer.Ordinal),
                    DeclaredTools = kv.Value.Declared.ToDictionary(d => d.Key, d => new DeclaredToolsObservation(d.Value.Requests, d.Value.Tokens, d.Value.Usd)),
                    Answers = kv.Value.OrderedAnswers(),
                    OutputPricePerMillion = kv.Value.OutputPricePerMillion,
                    PromptCache = new PromptCacheObservation(kv.Value.PrefixSamples, kv.Value.PrefixRepeats, kv.Value.PrefixTokens,
                        kv.Value.PrefixMissedTokens, kv.Value.PrefixMissedUsd, kv.Value.PrefixWrites, kv.Value.PrefixWriteUsd),
                }).OrderBy(m => m.Model, StringComparer.Ordinal).ToArray();
                return new TeamObservations(teamId, models, [.. _called.Order(StringComparer.Ordinal)]);
            }
        }
    }

    private sealed class ModelAggregate
    {
        public long Samples;
        public decimal CostUsd;
        public long InputTokens;
        public readonly Dictionary<string, (long Tokens, decimal Usd, long Requests)> Savings = new(StringComparer.Ordinal);
        public readonly Dictionary<int, (long Requests, long Tokens, decimal Usd)> Declared = [];
        public readonly AnswerObservation[] Answers = new AnswerObservation[AdaptiveOutputCaps.Window];
        public int Next;
        public int AnswerCount;
        public decimal OutputPricePerMillion;
        public long PrefixSamples;
        public long PrefixRepeats;
        public long PrefixTokens;
        public long PrefixMissedTokens;
        public decimal PrefixMissedUsd;
        public long PrefixWrites;
        public decimal PrefixWriteUsd;

        /// <summary>The answers in the ring, oldest first.</summary>
        public AnswerObservation[] OrderedAnswers() => AnswerCount < AdaptiveOutputCaps.Window
            ? Answers.AsSpan(0, AnswerCount).ToArray()
            : [.. Answers.AsSpan(Next), .. Answers.AsSpan(0, Next)];
    }
}

/// <summary>A team's sampled observations (a copy).</summary>
public sealed record TeamObservations(string TeamId, IReadOnlyList<ModelObservations> Models, IReadOnlyList<string> CalledTools)
{
    /// <summary>Sampled requests over all models.</summary>
    public long Samples => Models.Sum(m => m.Samples);
}

/// <summary>One model's sampled observations for a team.</summary>
public sealed record ModelObservations
{
    /// <summary>The canonical model.</summary>
    public required string Model { get; init; }

    /// <summary>Requests sampled.</summary>
    public long Samples { get; init; }

    /// <summary>Σ cost of the sampled requests.</summary>
    public decimal CostUsd { get; init; }

    /// <summary>Σ input tokens of the sampled requests.</summary>
    public long InputTokens { get; init; }

    /// <summary>Shadow savings by stage.</summary>
    public IReadOnlyDictionary<string, StageObservation> Savings { get; init; } = new Dictionary<string, StageObservation>();

    /// <summary>Requests with tools, by declared function count.</summary>
    public IReadOnlyDictionary<int, DeclaredToolsObservation> DeclaredTools { get; init; } = new Dictionary<int, DeclaredToolsObservation>();

    /// <summary>The last answers observed, oldest first.</summary>
    public IReadOnlyList<AnswerObservation> Answers { get; init; } = [];

    /// <summary>The model's output price per million tokens.</summary>
    public decimal OutputPricePerMillion { get; init; }

    /// <summary>Static-prefix observations (Anthropic without cache hints).</summary>
    public PromptCacheObservation PromptCache { get; init; } = new(0, 0, 0, 0, 0, 0, 0);
}

/// <summary>Σ over sampled requests of what one stage would have saved.</summary>
public readonly record struct StageObservation(long Tokens, decimal Usd, long Requests);

/// <summary>Σ over sampled requests that declared a given number of function tools.</summary>
public readonly record struct DeclaredToolsObservation(long Requests, long Tokens, decimal Usd);

/// <summary>One complete answer: output tokens per choice, the <c>max_tokens</c> it was sent with, choices and its cost.</summary>
public readonly record struct AnswerObservation(int OutputTokens, int? MaxTokens, int Choices, decimal CostUsd);

/// <summary>Σ over sampled requests with a cacheable static prefix.</summary>
public readonly record struct PromptCacheObservation(
    long Samples, long Repeats, long PrefixTokens, long MissedTokens, decimal MissedUsd, long Writes, decimal WritePremiumUsd);
