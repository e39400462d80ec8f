// One processing element of the weight-stationary systolic array: two int8 weight banks, and
// per cycle (when en) one int8 x int8 product added to the partial sum from the PE above.
//
// Everything it passes on is registered (activation and bank bit to the right, partial sum
// down), so the array's longest combinational path is one PE's multiply-add, whatever N is.
// A module of its own so that synthesis (hw_offload/synth.py) maps the PE once and
// instantiates it N*N times, instead of flattening N*N copies before mapping.
module systolic_pe (
    input  logic        clk,
    input  logic        en,       // advance the data wavefront this cycle
    input  logic [7:0]  a_in,     // activation from the left (int8)
    input  logic        b_in,     // weight bank the activation uses
    input  logic [31:0] p_in,     // partial sum from above (int32, wraps)
    input  logic [1:0]  w_we,     // write weight bank 0 / 1 this cycle
    input  logic [7:0]  w_data,   // the weight written (int8)
    output logic [7:0]  a_out,
    output logic        b_out,
    output logic [31:0] p_out
);
  logic [7:0] w [2];

  always_ff @(posedge clk) begin
    if (w_we[0]) w[0] <= w_data;
    if (w_we[1]) w[1] <= w_data;
  end

  always_ff @(posedge clk) begin
    if (en) begin
      a_out <= a_in;
      b_out <= b_in;
      p_out <= p_in + 32'($signed(a_in) * $signed(w[b_in]));
    end
  end
endmodule
