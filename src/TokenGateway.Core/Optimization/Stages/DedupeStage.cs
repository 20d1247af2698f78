using System.Text;

namespace TokenGateway.Core.Optimization.Stages;

/// <summary>
/// Stage 3: a large block (paragraph or fenced block of at least <see cref="DedupeOptions.MinTokens"/> tokens)
/// repeated verbatim in a later message is replaced there by a short reference; the first copy stays where it is
/// so the prefix before it is unchanged and provider caches keep hitting.
/// </summary>
internal sealed class DedupeStage : IOptimizationStage
{
    public string Name => OptimizationStages.Dedupe;

    public bool IsEnabled(OptimizationPolicy policy) => policy.Enabled && policy.Dedupe.Enabled;

    public int Apply(StageContext context)
    {
        var minTokens = context.Policy.Dedupe.MinTokens;
        var firstSeen = new Dictionary<string, TextSlot>(StringComparer.Ordinal);
        var saved = 0;
        foreach (var slot in RequestText.Slots(context.Request))
        {
            var original = slot.Text;
            if (original.Length < minTokens)
            {
                continue; // a token is at least one char: too short to hold a large block
            }

            var blocks = Split(original);
            var changed = false;
            var sb = new StringBuilder(original.Length);
            var pendingFirst = new List<string>();
            foreach (var (block, separator) in blocks)
            {
                var key = block.Trim();
                if (key.Length >= minTokens && firstSeen.TryGetValue(key, out var first) && first != slot && context.Count(key) >= minTokens)
                {
                    sb.Append(Reference(key, context.Count(key))).Append(separator);
                    changed = true;
                    continue;
                }

                if (key.Length >= minTokens)
                {
                    pendingFirst.Add(key);
                }

                sb.Append(block).Append(separator);
            }

            foreach (var key in pendingFirst)
            {
                firstSeen.TryAdd(key, slot);
            }

            if (!changed)
            {
                continue;
            }

            var rewritten = sb.ToString();
            var delta = context.Count(original) - context.Count(rewritten);
            if (delta > 0)
            {
                slot.Text = rewritten;
                saved += delta;
            }
        }

        if (saved > 0)
        {
            context.Request.MarkModified();
        }

        return saved;
    }

    /// <summary>The reference left in place of a repeated block; short, deterministic and itself never deduplicated.</summary>
    internal static string Reference(string block, int tokens)
    {
        var firstLine = block.Split('\n', 2)[0].Trim();
        var excerpt = firstLine.Length > 60 ? firstLine[..60].TrimEnd() + "…" : firstLine;
        return $"[duplicate of an earlier block ({tokens} tokens) starting \"{excerpt}\" — omitted]";
    }

    /// <summary>Splits text into blocks separated by blank lines; fenced code blocks stay whole.</summary>
    private static List<(string Block, string Separator)> Split(string text)
    {
        var result = new List<(string, string)>();
        foreach (var (segment, isFence) in TextCompactor.SplitFences(text))
        {
            if (isFence)
            {
                var body = segment.TrimEnd('\n');
                result.Add((body, segment[body.Length..]));
                continue;
            }

            var pos = 0;
            while (pos < segment.Length)
            {
                var separator = segment.IndexOf("\n\n", pos, StringComparison.Ordinal);
                if (separator < 0)
                {
                    result.Add((segment[pos..], string.Empty));
                    break;
                }

                var end = separator;
                while (end < segment.Length && segment[end] == '\n')
                {
                    end++;
                }

                result.Add((segment[pos..separator], segment[separator..end]));
                pos = end;
            }
        }

        return result;
    }
}
