using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace TokenGateway.Core.Optimization.Stages;

/// <summary>
/// Stage 4 (lossy, opt-in): when the latest turn carries retrieved documents — Anthropic <c>document</c> /
/// <c>search_result</c> blocks, <c>&lt;document&gt;…&lt;/document&gt;</c> sections, or a JSON array of objects with a
/// text field — keeps the ones most relevant to the latest user question (BM25) within a token budget, in their
/// original order. Earlier turns are never touched, so the cached prefix is unaffected.
/// </summary>
internal sealed partial class CurateStage : IOptimizationStage
{
    private static readonly string[] _textFields = ["text", "content", "page_content", "chunk", "body", "snippet", "passage"];
    private static readonly string[] _titleFields = ["title", "heading", "chunk_heading", "name", "source", "url"];

    public string Name => OptimizationStages.Curate;

    public bool IsEnabled(OptimizationPolicy policy) => policy.Enabled && policy.Curate.Enabled;

    public int Apply(StageContext context)
    {
        var slots = RequestText.Slots(context.Request);
        var lastUser = slots.FindLastIndex(s => s.Kind == SlotKind.User);
        if (lastUser < 0)
        {
            return 0;
        }

        var turn = slots[lastUser].Message;
        var inScope = slots.Where(s => s.Message >= turn && s.Kind is SlotKind.User or SlotKind.ToolResult or SlotKind.Document).ToList();
        var documents = new List<Document>();
        var question = new StringBuilder();
        foreach (var slot in inScope)
        {
            if (slot.Kind == SlotKind.Document && slot.Block is not null)
            {
                var existing = documents.FirstOrDefault(d => d.Block == slot.Block);
                if (existing is null)
                {
                    documents.Add(new Document(slot.Block, null, TitleOf(slot.Block) + "\n" + slot.Text, context.Count(slot.Block.ToJsonString())));
                }

                continue;
            }

            var text = slot.Text;
            var sections = DocumentSection().Matches(text);
            if (sections.Count > 0)
            {
                foreach (Match m in sections)
                {
                    documents.Add(new Document(null, (slot, m.Index, m.Length), m.Value, context.Count(m.Value)));
                }

                if (slot.Kind == SlotKind.User)
                {
                    question.Append(DocumentSection().Replace(text, " ")).Append('\n');
                }

                continue;
            }

            if (TryJsonDocuments(slot, context, documents))
            {
                continue;
            }

            if (slot.Kind == SlotKind.User && slot.Message == slots[lastUser].Message)
            {
                question.Append(text).Append('\n');
            }
        }

        var options = context.Policy.Curate;
        var total = documents.Sum(d => d.Tokens);
        if (documents.Count < 2 || total <= options.MaxTokens || string.IsNullOrWhiteSpace(question.ToString()))
        {
            return 0;
        }

        var keep = Select(question.ToString(), documents, options);
        if (keep.Count == documents.Count)
        {
            return 0;
        }

        var saved = Remove(context, documents, keep);
        if (saved > 0)
        {
            context.Request.MarkModified();
        }

        return saved;
    }

    /// <summary>Ranks by BM25 and keeps the best documents that fit the budget (at least MinDocuments).</summary>
    internal static HashSet<int> Select(string question, IReadOnlyList<Document> documents, CurateOptions options)
    {
        var scores = Bm25.Score(question, documents.Select(d => d.Text).ToList());
        var ranked = Enumerable.Range(0, documents.Count).OrderByDescending(i => scores[i]).ThenBy(i => i).ToList();
        var keep = new HashSet<int>();
        var used = 0;
        foreach (var i in ranked)
        {
            if (keep.Count < options.MinDocuments || used + documents[i].Tokens <= options.MaxTokens)
            {
                keep.Add(i);
                used += documents[i].Tokens;
            }
        }

        return keep;
    }

    private static int Remove(StageContext context, List<Document> documents, HashSet<int> keep)
    {
        var saved = 0;

        // Content blocks: remove from their array.
        foreach (var (document, index) in documents.Select((d, i) => (d, i)).Where(x => x.d.Block is not null && !keep.Contains(x.i)))
        {
            if (document.Block!.Parent is JsonArray parent && parent.Count > 1)
            {
                parent.Remove(document.Block);
                saved += document.Tokens;
            }
        }

        // Text sections: rebuild each slot once, removing sections back to front.
        foreach (var group in documents.Select((d, i) => (d, i)).Where(x => x.d.Section is not null).GroupBy(x => x.d.Section!.Value.Slot))
        {
            var slot = group.Key;
            var original = slot.Text;
            var text = original;
            var dropped = 0;
            foreach (var (document, _) in group.Where(x => !keep.Contains(x.i)).OrderByDescending(x => x.d.Section!.Value.Index))
            {
                text = text.Remove(document.Section!.Value.Index, document.Section.Value.Length);
                dropped++;
            }

            if (dropped == 0)
            {
                continue;
            }

            text = TextCompactor.NormalizeWhitespace(text);
            var delta = context.Count(original) - context.Count(text);
            if (delta > 0)
            {
                slot.Text = text;
                saved += delta;
            }
        }

        // JSON arrays: keep the selected elements, minified.
        foreach (var group in documents.Select((d, i) => (d, i)).Where(x => x.d.Element is not null).GroupBy(x => x.d.Element!.Value.Slot))
        {
            var slot = group.Key;
            var original = slot.Text;
            var array = new JsonArray();
            foreach (var (document, index) in group.OrderBy(x => x.d.Element!.Value.Index))
            {
                if (keep.Contains(index))
                {
                    array.Add(JsonNode.Parse(document.Text));
                }
            }

            var text = array.ToJsonString(Dialects.LlmRequestParser.WriteOptions);
            var delta = context.Count(original) - context.Count(text);
            if (delta > 0)
            {
                slot.Text = text;
                saved += delta;
            }
        }

        return saved;
    }

    private static bool TryJsonDocuments(TextSlot slot, StageContext context, List<Document> documents)
    {
        var text = slot.Text.Trim();
        if (text.Length < 2 || text[0] != '[' || text[^1] != ']')
        {
            return false;
        }

        JsonArray? array;
        try
        {
            array = JsonNode.Parse(text) as JsonArray;
        }
        catch (JsonException)
        {
            return false;
        }

        if (array is null || array.Count < 2 || !array.All(e => e is JsonObject o && _textFields.Any(f => o[f] is JsonValue v && v.GetValueKind() == JsonValueKind.String)))
        {
            return false;
        }

        for (var i = 0; i < array.Count; i++)
        {
            var json = array[i]!.ToJsonString(Dialects.LlmRequestParser.WriteOptions);
            documents.Add(new Document(null, null, json, context.Count(json)) { Element = (slot, i) });
        }

        return true;
    }

    private static string TitleOf(JsonObject block) =>
        string.Join(' ', _titleFields.Select(f => block[f]).OfType<JsonValue>().Where(v => v.GetValueKind() == JsonValueKind.String).Select(v => v.GetValue<string>()));

    [GeneratedRegex(@"<document\b[^>]*>.*?</document>\s*", RegexOptions.Singleline | RegexOptions.IgnoreCase)]
    private static partial Regex DocumentSection();

    /// <summary>One retrieved document: a content block, a text section, or a JSON array element.</summary>
    internal sealed record Document(JsonObject? Block, (TextSlot Slot, int Index, int Length)? Section, string Text, int Tokens)
    {
        public (TextSlot Slot, int Index)? Element { get; init; }
    }
}
