// Weight-stationary N x N systolic array, int8 x int8 -> int32.
//
// PE(r,c) holds weight B[k0+r][n0+c] in one of two banks. Activation row m enters array row r
// skewed by r cycles and moves one column right per cycle; partial sums move one row down per
// cycle. Column c's dot product leaves the bottom at (inject + N-1 + c) and is de-skewed so a
// whole output row appears LATENCY edges after injection, together with the tag that entered
// with it. The bank bit travels with the activation, so the next tile's weights (loaded into
// the other bank while this tile streams) switch in exactly where the wavefront is.
// The PEs themselves are systolic_pe instances (systolic_pe.sv).
module systolic_array #(
    parameter int N = 16,
    parameter int TAGW = 18
) (
    input  logic              clk,
    input  logic              rst_n,
    input  logic              en,           // advance the data wavefront this cycle
    // activation injection (one row of N int8 per cycle; zeros when in_valid is low)
    input  logic              in_valid,
    input  logic [N*8-1:0]    in_row,
    input  logic              in_bank,
    input  logic [TAGW-1:0]   in_tag,
    // weight load: one row (or, transposed, one column) of a bank per cycle
    input  logic              w_we,
    input  logic              w_bank,
    input  logic [$clog2(N)-1:0] w_idx,
    input  logic              w_transpose,
    input  logic [N*8-1:0]    w_row,
    // de-skewed output row
    output logic              out_valid,
    output logic [TAGW-1:0]   out_tag,
    output logic [N*32-1:0]   out_row,
    output logic [TAGW-1:0]   next_tag,     // the tag out_tag shows next cycle (a read ahead)
    output logic              next_valid,   // out_valid next cycle (while en stays high)
    output logic              inflight      // some tag still travelling
);
  localparam int LAT = 2 * N - 1;  // tag pipeline length (inject edge .. aligned output)

  logic [7:0]  a_pe  [N][N];      // PE(r,c)'s registered activation, bank bit, partial sum
  logic        b_pe  [N][N];
  logic [31:0] p_pe  [N][N];
  logic [7:0]  skew_d [N][N];      // row r uses entries 0..r-1
  logic        skew_b [N][N];
  logic [31:0] dsk   [N][N];       // column c uses entries 0..N-2-c
  logic [TAGW-1:0] tag_d [LAT];
  logic [LAT-1:0]  tag_v;

  logic [7:0] in_b [N];
  always_comb for (int r = 0; r < N; r++) in_b[r] = in_valid ? in_row[r*8 +: 8] : 8'd0;

  // The PE grid. A PE's inputs come from its left / upper neighbour's registers, or, at the
  // edges, from the input skew (column 0) and zero (row 0).
  for (genvar r = 0; r < N; r++) begin : g_row
    for (genvar c = 0; c < N; c++) begin : g_col
      logic [7:0]  a_in;
      logic        b_in;
      logic [31:0] p_in;
      if (c > 0) begin : g_from_left
        assign a_in = a_pe[r][c-1];
        assign b_in = b_pe[r][c-1];
      end else if (r > 0) begin : g_from_skew
        assign a_in = skew_d[r][r-1];
        assign b_in = skew_b[r][r-1];
      end else begin : g_from_input
        assign a_in = in_b[0];
        assign b_in = in_bank;
      end
      if (r > 0) begin : g_from_above
        assign p_in = p_pe[r-1][c];
      end else begin : g_top_row
        assign p_in = 32'd0;
      end
      // Row w_idx of a bank is written from w_row, or (transposed) its column w_idx.
      wire w_sel = w_we && (w_transpose ? (32'(w_idx) == c) : (32'(w_idx) == r));
      systolic_pe u_pe (
        .clk, .en, .a_in, .b_in, .p_in,
        .w_we({w_sel && w_bank, w_sel && !w_bank}),
        .w_data(w_transpose ? w_row[r*8 +: 8] : w_row[c*8 +: 8]),
        .a_out(a_pe[r][c]), .b_out(b_pe[r][c]), .p_out(p_pe[r][c])
      );
    end
  end

  always_ff @(posedge clk) begin
    if (en) begin
      for (int r = 0; r < N; r++) begin
        skew_d[r][0] <= in_b[r];
        skew_b[r][0] <= in_bank;
        for (int k = 1; k < N; k++) begin
          skew_d[r][k] <= skew_d[r][k-1];
          skew_b[r][k] <= skew_b[r][k-1];
        end
      end
      for (int c = 0; c < N - 1; c++) begin
        dsk[c][0] <= p_pe[N-1][c];
        for (int k = 1; k < N - 1; k++) dsk[c][k] <= dsk[c][k-1];
      end
      tag_d[0] <= in_tag;
      for (int k = 1; k < LAT; k++) tag_d[k] <= tag_d[k-1];
    end
  end

  always_ff @(posedge clk or negedge rst_n) begin
    if (!rst_n) tag_v <= '0;
    else if (en) tag_v <= {tag_v[LAT-2:0], in_valid};
  end

  always_comb begin
    for (int c = 0; c < N; c++)
      out_row[c*32 +: 32] = (c == N - 1) ? p_pe[N-1][c] : dsk[c][N-2-c];
  end
  assign out_valid = tag_v[LAT-1] & en;
  assign out_tag   = tag_d[LAT-1];
  assign next_tag  = tag_d[LAT-2];
  assign next_valid = tag_v[LAT-2];
  assign inflight  = |tag_v;
endmodule
